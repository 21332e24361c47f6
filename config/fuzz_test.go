package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	} {
		f.Add([]byte(s))
	}
	getenv := env(map[string]string{"I": "5s", "API_TOKEN": "x", "T": "1s", "EMPTY": ""})
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
			}
			if c.Cluster.Quorum < 1 {
				t.Fatalf("quorum %d accepted", c.Cluster.Quorum)
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
