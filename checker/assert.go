package checker

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/vantage-dev/vantage/config"
)

// JSON assertions use github.com/tidwall/gjson rather than a jq
// implementation such as gojq. An assertion is a path and a comparison,
// nothing more: gjson looks a path up in the raw body in one scan,
// without decoding the document into Go values, so a probe that runs every
// few seconds on a body of up to body_limit bytes allocates little; it
// tells a missing member from a null one (op exists); and its path syntax
// (keys and indices joined by dots, special characters escaped) takes
// config's $.a.b[0] paths one to one. A jq program per assertion would be
// a language where a path is enough, with its compile step and its
// decoded values.

// checkHeaders applies expect.headers to a response's headers.
func checkHeaders(h http.Header, as []config.HeaderAssertion) error {
	for _, a := range as {
		vals := h.Values(a.Name)
		want := ""
		if a.Regex != nil {
			want = ", want /" + a.Regex.String() + "/"
		}
		if len(vals) == 0 {
			return perr(CodeAssertHeader, "header %s: missing%s", a.Name, want)
		}
		if a.Regex == nil {
			continue
		}
		ok := false
		for _, v := range vals {
			if a.Regex.MatchString(v) {
				ok = true
				break
			}
		}
		if !ok {
			return perr(CodeAssertHeader, "header %s: got %s%s", a.Name, quoteShort(strings.Join(vals, ", ")), want)
		}
	}
	return nil
}

// checkBodyNot applies expect.body_not_contains and body_not_regex.
func checkBodyNot(buf []byte, e *config.Expect, limit int64) error {
	if s := e.BodyNotContains; s != "" && bytes.Contains(buf, []byte(s)) {
		return perr(CodeAssertBodyNotContains, "body contains %s%s", quoteShort(s), limitNote(buf, limit))
	}
	if re := e.BodyNotRegex; re != nil {
		if loc := re.FindIndex(buf); loc != nil {
			return perr(CodeAssertBodyNotRegex, "body matches /%s/: %s%s", re.String(), quoteShort(string(buf[loc[0]:loc[1]])), limitNote(buf, limit))
		}
	}
	return nil
}

// jsonPath is the gjson path of an assertion's keys.
func jsonPath(keys []string) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = gjson.Escape(k)
	}
	return strings.Join(parts, ".")
}

// checkJSON applies expect.json to a body, in order; the first assertion
// that fails is reported as `PATH OP VALUE: got ...`.
func checkJSON(buf []byte, as []config.JSONAssertion, limit int64) error {
	if len(as) == 0 {
		return nil
	}
	if !gjson.ValidBytes(buf) {
		return perr(CodeAssertJSON, "body is not valid JSON%s", limitNote(buf, limit))
	}
	for _, a := range as {
		var res gjson.Result
		if len(a.Keys) == 0 {
			res = gjson.ParseBytes(buf)
		} else {
			res = gjson.GetBytes(buf, jsonPath(a.Keys))
		}
		if msg := jsonAssertionFails(a, res); msg != "" {
			return perr(CodeAssertJSON, "%s: %s", a.String(), msg)
		}
	}
	return nil
}

// jsonAssertionFails returns what is wrong with res for a, or "".
func jsonAssertionFails(a config.JSONAssertion, res gjson.Result) string {
	if a.Op == config.OpExists {
		want, _ := a.Value.(bool)
		switch {
		case want && !res.Exists():
			return "not found"
		case !want && res.Exists():
			return "got " + rawShort(res)
		}
		return ""
	}
	if !res.Exists() {
		return "not found"
	}
	got := "got " + rawShort(res)
	switch a.Op {
	case config.OpEq:
		if !jsonEqual(res, a.Value) {
			return got
		}
	case config.OpNe:
		if jsonEqual(res, a.Value) {
			return got
		}
	case config.OpLt, config.OpLe, config.OpGt, config.OpGe:
		want, ok := a.Value.(float64)
		if !ok {
			return "the value is not a number"
		}
		if res.Type != gjson.Number {
			return got + " (not a number)"
		}
		n := res.Num
		var pass bool
		switch a.Op {
		case config.OpLt:
			pass = n < want
		case config.OpLe:
			pass = n <= want
		case config.OpGt:
			pass = n > want
		default:
			pass = n >= want
		}
		if !pass {
			return got
		}
	case config.OpContains:
		switch {
		case res.Type == gjson.String:
			s, ok := a.Value.(string)
			if !ok {
				s = config.FormatJSONValue(a.Value)
			}
			if !strings.Contains(res.Str, s) {
				return got
			}
		case res.IsArray():
			found := false
			res.ForEach(func(_, v gjson.Result) bool {
				found = jsonEqual(v, a.Value)
				return !found
			})
			if !found {
				return got
			}
		case res.IsObject():
			s, ok := a.Value.(string)
			if !ok || !res.Get(gjson.Escape(s)).Exists() {
				return got
			}
		default:
			return got + " (not a string, array or object)"
		}
	default:
		return "unknown op " + strconv.Quote(a.Op)
	}
	return ""
}

// jsonEqual reports whether a JSON value equals an assertion's value: a
// string a string, a number a number (as float64), a boolean a boolean.
func jsonEqual(res gjson.Result, v any) bool {
	switch x := v.(type) {
	case string:
		return res.Type == gjson.String && res.Str == x
	case float64:
		return res.Type == gjson.Number && res.Num == x
	case bool:
		return (res.Type == gjson.True && x) || (res.Type == gjson.False && !x)
	case nil:
		return res.Type == gjson.Null
	}
	return false
}

// rawShort is a JSON value as the body has it, cut for messages.
func rawShort(res gjson.Result) string {
	const most = 64
	raw := strings.TrimSpace(res.Raw)
	if len(raw) > most {
		cut := most
		for cut > 0 && !utf8.RuneStart(raw[cut]) {
			cut--
		}
		return raw[:cut] + "..."
	}
	return raw
}
