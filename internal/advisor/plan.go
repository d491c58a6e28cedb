package advisor

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// node is one node of an EXPLAIN (FORMAT JSON, VERBOSE) plan: the fields
// the advisor reads.
type node struct {
	Type         string   `json:"Node Type"`
	Relation     string   `json:"Relation Name"`
	Schema       string   `json:"Schema"`
	Alias        string   `json:"Alias"`
	IndexName    string   `json:"Index Name"`
	Filter       string   `json:"Filter"`
	IndexCond    string   `json:"Index Cond"`
	RecheckCond  string   `json:"Recheck Cond"`
	SortKey      []string `json:"Sort Key"`
	PresortedKey []string `json:"Presorted Key"`
	TotalCost    float64  `json:"Total Cost"`
	Plans        []node   `json:"Plans"`
}

// parsePlan reads the root of EXPLAIN (FORMAT JSON) output.
func parsePlan(raw []byte) (node, error) {
	var out []struct {
		Plan node `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return node{}, fmt.Errorf("read plan: %w", err)
	}
	if len(out) == 0 {
		return node{}, fmt.Errorf("read plan: empty")
	}
	return out[0].Plan, nil
}

// usesIndex reports whether the plan scans the index named name.
func (n node) usesIndex(name string) bool {
	if n.IndexName != "" && strings.Contains(n.IndexName, name) {
		return true
	}
	for _, c := range n.Plans {
		if c.usesIndex(name) {
			return true
		}
	}
	return false
}

// access is what a plan asks of one relation: columns compared for
// equality, compared by range, and the order a sort above it wants.
type access struct {
	schema, table string
	// index is the existing index the plan scans, if any.
	index   string
	eq, rng []string
	sort    []sortKey
	// unserved is set when the plan filters rows of this relation that no
	// index condition serves, or sorts them: an index could help.
	unserved bool
}

type sortKey struct {
	col  string
	desc bool
}

// accesses walks the plan and returns what it asks of each relation it
// scans, in plan order.
func accesses(root node) []*access {
	var out []*access
	var walk func(n node) []*access
	walk = func(n node) []*access {
		var mine []*access
		if n.Relation != "" && strings.Contains(n.Type, "Scan") {
			a := &access{schema: n.Schema, table: n.Relation, index: n.IndexName}
			for _, cond := range []string{n.IndexCond, n.RecheckCond} {
				eq, rng := predicates(cond)
				a.eq, a.rng = appendNew(a.eq, eq...), appendNew(a.rng, rng...)
			}
			if n.Filter != "" {
				eq, rng := predicates(n.Filter)
				if len(eq)+len(rng) > 0 {
					a.unserved = true
				}
				a.eq, a.rng = appendNew(a.eq, eq...), appendNew(a.rng, rng...)
			}
			out = append(out, a)
			mine = append(mine, a)
		}
		for _, c := range n.Plans {
			mine = append(mine, walk(c)...)
		}
		// A sort over one relation's rows is an order an index can give.
		if (n.Type == "Sort" || n.Type == "Incremental Sort") && len(mine) == 1 {
			a := mine[0]
			for _, k := range n.SortKey {
				col, desc, ok := sortColumn(k)
				if !ok {
					a.sort = nil
					break
				}
				a.sort = append(a.sort, sortKey{col: col, desc: desc})
			}
			if len(a.sort) > 0 {
				a.unserved = true
			}
		}
		return mine
	}
	walk(root)
	return out
}

var (
	colRef = `(?:"?[A-Za-z_][A-Za-z0-9_$]*"?\.)?"?([A-Za-z_][A-Za-z0-9_$]*)"?`
	// A column may come cast, as "(t.kind)::text" (a domain or enum).
	castCol  = `\(?` + colRef + `\)?(?:::[A-Za-z_ ."]+)?`
	leftCol  = regexp.MustCompile(`^` + castCol + ` (=|>=|<=|>|<) (.+)$`)
	rightCol = regexp.MustCompile(`^(.+) (=|>=|<=|>|<) ` + castCol + `$`)
	sortCol  = regexp.MustCompile(`^` + colRef + `(?: (DESC|ASC))?(?: NULLS (?:FIRST|LAST))?$`)
)

// predicates returns the columns that cond (a plan's condition text)
// compares with "=" (or "= ANY") and by range, from its top-level AND
// terms; terms under OR serve no index and are left out. Names are
// unqualified; the caller checks they are the relation's columns.
func predicates(cond string) (eq, rng []string) {
	for _, term := range conjuncts(cond) {
		if splitTop(term, " OR ") != nil {
			continue
		}
		col, op := "", ""
		if m := leftCol.FindStringSubmatch(term); m != nil {
			col, op = m[1], m[2]
		} else if m := rightCol.FindStringSubmatch(term); m != nil {
			col, op = m[3], flip(m[2])
		}
		switch {
		case col == "":
		case op == "=":
			eq = appendNew(eq, col)
		default:
			rng = appendNew(rng, col)
		}
	}
	return eq, rng
}

func flip(op string) string {
	switch op {
	case ">":
		return "<"
	case "<":
		return ">"
	case ">=":
		return "<="
	case "<=":
		return ">="
	}
	return op
}

func sortColumn(k string) (string, bool, bool) {
	m := sortCol.FindStringSubmatch(strings.TrimSpace(k))
	if m == nil {
		return "", false, false
	}
	return m[1], m[2] == "DESC", true
}

// conjuncts splits a condition into its top-level AND terms, each without
// its outer parentheses.
func conjuncts(cond string) []string {
	cond = unwrap(strings.TrimSpace(cond))
	if cond == "" {
		return nil
	}
	parts := splitTop(cond, " AND ")
	if parts == nil {
		return []string{cond}
	}
	for i := range parts {
		parts[i] = unwrap(strings.TrimSpace(parts[i]))
	}
	return parts
}

// unwrap strips parentheses enclosing all of s.
func unwrap(s string) string {
	for len(s) >= 2 && s[0] == '(' && s[len(s)-1] == ')' && closing(s, 0) == len(s)-1 {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

// nesting follows parentheses and quoted text through SQL, a byte at a
// time, for the scans below.
type nesting struct {
	depth int
	quote byte // the open quote, 0 outside quotes
}

// step takes the next byte c and reports whether it is code: outside
// quotes and no quote mark itself. A parenthesis is code; depth counts it.
func (n *nesting) step(c byte) bool {
	switch {
	case n.quote != 0:
		if c == n.quote {
			n.quote = 0
		}
		return false
	case c == '\'' || c == '"':
		n.quote = c
		return false
	case c == '(':
		n.depth++
	case c == ')':
		n.depth--
	}
	return true
}

// closing returns the index of the parenthesis closing the one at open,
// skipping quoted text.
func closing(s string, open int) int {
	var n nesting
	for i := open; i < len(s); i++ {
		if n.step(s[i]) && s[i] == ')' && n.depth == 0 {
			return i
		}
	}
	return -1
}

// splitTop splits s at sep outside parentheses and quotes; nil when sep
// does not occur there.
func splitTop(s, sep string) []string {
	var parts []string
	var n nesting
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if n.step(c) && c != '(' && c != ')' && n.depth == 0 && strings.HasPrefix(s[i:], sep) {
			parts = append(parts, s[start:i])
			start = i + len(sep)
			i += len(sep) - 1
		}
	}
	if parts == nil {
		return nil
	}
	return append(parts, s[start:])
}

func appendNew(list []string, cols ...string) []string {
	for _, c := range cols {
		found := false
		for _, l := range list {
			if l == c {
				found = true
				break
			}
		}
		if !found {
			list = append(list, c)
		}
	}
	return list
}
