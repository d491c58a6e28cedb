package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode"

	"github.com/danielgtaylor/huma/v2"
)

// JSON bodies are read the way the schema reads them, or refused.
//
// encoding/json matches field names without regard to case and lets the
// last of two equal names win, while huma validates the first it finds:
// {"reason":"ok","REASON":"<5,000 chars>"} passed a 500-character limit
// and stored the long one. checkFieldNames refuses, before huma decodes, a
// name given twice in one object (also in another case) and a name that
// matches a property of the schema only in another case, each with a 422
// at its field. jsonFormat decodes a number of any size for validation, so
// that 1e400 is out of range at its field (422) rather than a decoding
// error of the whole body (400, with Go's text).

// bodyKey holds the request body limitBody read, for checkFieldNames.
type bodyKey struct{}

func withBody(ctx context.Context, body []byte) context.Context {
	return context.WithValue(ctx, bodyKey{}, body)
}

// checkFieldNames is the huma middleware that refuses duplicate and
// case-variant field names in a JSON body (see above). A body that is not
// JSON is left to huma (400).
func checkFieldNames(api huma.API) func(ctx huma.Context, next func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		body, _ := ctx.Context().Value(bodyKey{}).([]byte)
		op := ctx.Operation()
		if len(body) == 0 || op.RequestBody == nil || !isJSONType(ctx.Header("Content-Type")) {
			next(ctx)
			return
		}
		var schema *huma.Schema
		if mt := op.RequestBody.Content["application/json"]; mt != nil {
			schema = mt.Schema
		}
		w := &nameWalker{dec: json.NewDecoder(bytes.NewReader(body)), reg: api.OpenAPI().Components.Schemas}
		w.dec.UseNumber()
		if err := w.value(schema, "body"); err != nil || len(w.details) == 0 {
			next(ctx) // well-formed and clean, or malformed: huma answers
			return
		}
		_ = huma.WriteErr(api, ctx, 422, "validation failed", w.details...)
	}
}

func isJSONType(ct string) bool { return ct == "" || strings.Contains(ct, "json") }

// nameWalker walks a JSON value token by token beside its schema (nil
// where the schema says nothing) and collects the bad names.
type nameWalker struct {
	dec     *json.Decoder
	reg     huma.Registry
	details []error
}

func (w *nameWalker) resolve(s *huma.Schema) *huma.Schema {
	for i := 0; s != nil && s.Ref != "" && i < 32; i++ {
		s = w.reg.SchemaFromRef(s.Ref)
	}
	return s
}

func (w *nameWalker) value(s *huma.Schema, path string) error {
	s = w.resolve(s)
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]string{} // folded name → name as sent
		for w.dec.More() {
			tok, err := w.dec.Token()
			if err != nil {
				return err
			}
			name, _ := tok.(string)
			at := path + "." + name
			folded := foldName(name)
			child, exact := w.property(s, name)
			first, dup := seen[folded]
			switch {
			case dup && first == name:
				w.details = append(w.details, &huma.ErrorDetail{Location: at, Message: "duplicate field"})
			case dup:
				w.details = append(w.details, &huma.ErrorDetail{Location: at,
					Message: fmt.Sprintf("duplicate field: %q and %q differ only in case (field names are case-sensitive)", first, name)})
			case exact != "" && exact != name:
				w.details = append(w.details, &huma.ErrorDetail{Location: at,
					Message: fmt.Sprintf("unexpected property (field names are case-sensitive: did you mean %q?)", exact)})
			}
			seen[folded] = name
			if err := w.value(child, at); err != nil {
				return err
			}
		}
	case json.Delim('['):
		var items *huma.Schema
		if s != nil {
			items = s.Items
		}
		for i := 0; w.dec.More(); i++ {
			if err := w.value(items, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	default:
		return nil // a scalar
	}
	_, err = w.dec.Token() // the closing delimiter
	return err
}

// property returns the schema of the field name of object schema s (nil
// when unknown) and the property's exact name, when a property matches
// name in some case ("" when none does).
func (w *nameWalker) property(s *huma.Schema, name string) (*huma.Schema, string) {
	if s == nil {
		return nil, ""
	}
	if p, ok := s.Properties[name]; ok {
		return p, name
	}
	for k, p := range s.Properties {
		if strings.EqualFold(k, name) {
			return p, k
		}
	}
	if addl, ok := s.AdditionalProperties.(*huma.Schema); ok {
		return addl, ""
	}
	return nil, ""
}

// foldName folds a name the way encoding/json compares names (as
// bytes.EqualFold does): two names are the same field to it exactly when
// their folds are equal.
func foldName(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(unicode.ToUpper(unicode.ToLower(r)))
	}
	return b.String()
}

// jsonFormat is huma's JSON format, except that the decoding for
// validation (into an any) takes numbers of any size: one beyond float64
// becomes ±Inf, which the schema's bounds then refuse at its field, and a
// malformed body is described without Go's error text.
func jsonFormat() huma.Format {
	f := huma.DefaultJSONFormat
	f.Unmarshal = func(data []byte, v any) error {
		p, ok := v.(*any)
		if !ok {
			return json.Unmarshal(data, v)
		}
		return decodeAny(data, p)
	}
	return f
}

func decodeAny(data []byte, p *any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return malformed(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("malformed JSON: more data after the value")
	}
	*p = numbers(v)
	return nil
}

func malformed(err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("malformed JSON at byte %d", syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errors.New("malformed JSON: the body ends too early")
	}
	return errors.New("malformed JSON")
}

// numbers turns the json.Numbers of v into float64s, as json.Unmarshal
// would, except that one out of float64's range becomes ±Inf instead of
// an error.
func numbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = numbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = numbers(e)
		}
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil && !math.IsInf(f, 0) {
			return string(v) // not a number after all: "expected number"
		}
		return f
	}
	return v
}

// finite returns v, or nil for a float that JSON cannot carry (±Inf, NaN)
// in an error's value.
func finite(v any) any {
	if f, ok := v.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
		return nil
	}
	return v
}
