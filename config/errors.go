package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a configuration file, located at the offending
// key (or value, for type errors and ${VAR} references).
type Error struct {
	File         string // the path exactly as given to Load or Parse
	Line, Column int    // 1-based
	Msg          string
}

// Error formats the problem as FILE:LINE:COL: message.
func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// Errors is every problem found in a configuration file, sorted by line and
// column. Load and Parse return it unwrapped, so callers can use errors.As.
type Errors []*Error

// Error returns one FILE:LINE:COL: message line per problem.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the individual problems, so errors.As can also find an
// *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sorted orders the problems by position and drops exact duplicates (which
// arise when an anchored value is used several times).
func (es Errors) sorted() Errors {
	out := slices.Clone(es)
	slices.SortStableFunc(out, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	seen := make(map[Error]bool, len(out))
	return slices.DeleteFunc(out, func(e *Error) bool {
		if seen[*e] {
			return true
		}
		seen[*e] = true
		return false
	})
}
