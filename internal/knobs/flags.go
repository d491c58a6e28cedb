package knobs

import (
	"flag"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Register adds to fs a flag for every knob of k that has a flag tag,
// bound to that field of k. Its help is the field's help tag, then what
// zero means with each profile's value (profiles by name), then the
// environment variable: "(HMP_X)". The help is made from the struct and
// the profiles, so it says what the profiles set.
func Register(fs *flag.FlagSet, k *Knobs, profiles map[string]Knobs) {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	walk(reflect.ValueOf(k).Elem(), nil, func(f reflect.StructField, v reflect.Value, path []int) {
		name := f.Tag.Get("flag")
		if name == "" {
			return
		}
		vals := make([]string, len(names))
		for i, n := range names {
			p := reflect.ValueOf(profiles[n]).FieldByIndex(path)
			vals[i] = fmt.Sprintf("%s %v", n, p.Interface())
		}
		zero := "0"
		if v.Kind() == reflect.String {
			zero = "empty"
		}
		help := fmt.Sprintf("%s; %s: the profile's (%s) (%s)", f.Tag.Get("help"), zero, strings.Join(vals, ", "), f.Tag.Get("env"))
		switch p := v.Addr().Interface().(type) {
		case *int:
			fs.IntVar(p, name, *p, help)
		case *string:
			fs.StringVar(p, name, *p, help)
		default:
			panic(fmt.Sprintf("knobs: flag %s on a %s field", name, v.Type()))
		}
	})
}

// walk calls fn for every leaf field of the struct v, with its index path.
func walk(v reflect.Value, path []int, fn func(reflect.StructField, reflect.Value, []int)) {
	for i := range v.NumField() {
		f := v.Type().Field(i)
		p := append(slices.Clip(path), i)
		if f.Type.Kind() == reflect.Struct {
			walk(v.Field(i), p, fn)
			continue
		}
		fn(f, v.Field(i), p)
	}
}
