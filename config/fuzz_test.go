package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain shortens the fuzzer's minimization of new inputs from 60s to 3s
// unless -fuzzminimizetime is given. The seeds (testdata/*.yaml) are a few KB
// long, and minimizing an interesting mutation of one takes the fuzzer's
// whole default budget, so that `go test -fuzz=FuzzParse -fuzztime=60s`
// would otherwise spend its minute minimizing a single input.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.fuzzminimizetime" })
	if !explicit {
		if err := flag.Set("test.fuzzminimizetime", "3s"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

// FuzzParse checks that Parse never panics and that every problem it
// reports is well-formed: a file name as given, a position of at least 1:1
// and a one-line message.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"checks: []\n",
		"checks: [{name: a, type: tcp, target: 'a:1'}]\n",
		"a: [1\n",
		"a: 1\n---\nb: 2\n",
		"&a [*a]\n",
		"checks: &c [*c]\n",
		"<<: *x\n",
		"defaults: {interval: ${I}, timeout: $${T}}\n",
		"checks: [{<<: {<<: {name: a}}, type: http, url: 'http://[::1]:80/x'}]\n",
		"\t\x00\xff",
		"defaults: {interval: 1d, down_interval: 1w}\n",
		"checks: [{name: a, type: tcp, target: 'a:1', down_interval: 2s, depends_on: [b]}, {name: b, type: tcp, target: 'b:1', depends_on: [a]}]\n",
		"checks: [{name: d, type: dns, target: example.com, record: MX, server: '[::1]:53', expect: {rcode: nxdomain, answers: ['10 mx.example.com']}}]\n",
		"checks: [{name: p, type: push, token: '${PUSH_TOKEN}', period: 1w2d, grace: 1.5d}]\n",
		"checks: [{name: h, type: http, url: 'http://h', expect: {json: [{path: \"$['a'][0].b\", op: '>=', value: 1.5}, {path: c, op: exists, value: false}], headers: {X-A: '^a'}, body_not_regex: '(?i)x'}}]\n",
		"checks: [{name: a, type: tcp, target: 'a:1'}]\nmaintenance: [{checks: [a], every: '*/5 1-3 * * 1-5', duration: 2h, timezone: Europe/Berlin}]\n",
		"notifiers: [{name: n, type: slack, url: 'https://h'}]\nroutes: [{notify: [n], group_by: [group], group_wait: 1m}]\nstatuspage: {timezone: Asia/Seoul, locale: ko}\n",
	} {
		f.Add([]byte(s))
	}
	getenv := env(map[string]string{"I": "5s", "API_TOKEN": "x", "T": "1s", "EMPTY": "", "PUSH_TOKEN": "0123456789abcdef"})
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "fuzz.yaml"
		c, err := Parse(path, data, getenv)
		if err == nil {
			if c == nil {
				t.Fatal("nil Config without an error")
			}
			for i := range c.Checks {
				ck := &c.Checks[i]
				if ck.Interval < MinInterval || ck.Timeout <= 0 || ck.Timeout >= ck.Interval || ck.FailAfter < 1 || ck.RecoverAfter < 1 {
					t.Fatalf("invalid check accepted: %+v", ck)
				}
				if c.CheckByName(ck.Name) == nil {
					t.Fatalf("CheckByName(%q) = nil", ck.Name)
				}
				if ck.DownInterval < MinInterval || ck.DownInterval > ck.Interval {
					t.Fatalf("invalid down_interval accepted: %+v", ck)
				}
				if ck.Type == TypePush && (len(ck.Token) < MinPushTokenLen || ck.Period < MinInterval || ck.Grace < MinGrace) {
					t.Fatalf("invalid push check accepted: %+v", ck)
				}
				for _, dep := range ck.DependsOn {
					if c.CheckByName(dep) == nil || dep == ck.Name {
						t.Fatalf("invalid depends_on accepted: %+v", ck)
					}
				}
			}
			if c.Cluster.Quorum < 1 {
				t.Fatalf("quorum %d accepted", c.Cluster.Quorum)
			}
			for _, w := range c.Maintenance {
				// A recurring window answers without panicking or looping.
				now := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
				w.Contains(now)
				w.Next(now)
			}
			return
		}
		if c != nil {
			t.Fatal("Config returned with an error")
		}
		errs, ok := err.(Errors)
		if !ok {
			t.Fatalf("error is %T, not Errors: %v", err, err)
		}
		if len(errs) == 0 {
			t.Fatal("empty Errors")
		}
		for i, e := range errs {
			if e == nil || e.File != path || e.Line < 1 || e.Column < 1 || e.Msg == "" || strings.Contains(e.Msg, "\n") {
				t.Fatalf("malformed error %d: %#v", i, e)
			}
			if i > 0 && (e.Line < errs[i-1].Line || e.Line == errs[i-1].Line && e.Column < errs[i-1].Column) {
				t.Fatalf("errors not sorted: %v then %v", errs[i-1], e)
			}
		}
	})
}
