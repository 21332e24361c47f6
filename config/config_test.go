package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env returns a getenv that knows only vars.
func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

// y strips the newline after the opening backquote, so that line 1 of the
// document is the first line of the literal.
func y(s string) []byte { return []byte(strings.TrimPrefix(s, "\n")) }

var fullEnv = env(map[string]string{
	"API_TOKEN":         "secret-token",
	"PAGERDUTY_KEY":     "pd-routing-key",
	"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/XXX",
	"HOOK_SECRET":       "hook-secret",
})

func mustParse(t *testing.T, path string, data []byte, getenv func(string) (string, bool)) *Config {
	t.Helper()
	c, err := Parse(path, data, getenv)
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v", err)
	}
	return c
}

func TestFullContractExample(t *testing.T) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, "testdata/full.yaml", data, fullEnv)

	if c.Path != "testdata/full.yaml" {
		t.Errorf("Path = %q", c.Path)
	}
	wantCluster := Cluster{
		Regions:  []string{"eu-west", "us-east", "ap-south"},
		Quorum:   2,
		Gossip:   "wan",
		Canaries: []string{"tcp://1.1.1.1:53", "https://www.cloudflare.com/cdn-cgi/trace"},
	}
	if !reflect.DeepEqual(c.Cluster, wantCluster) {
		t.Errorf("Cluster = %+v, want %+v", c.Cluster, wantCluster)
	}
	if want := (Defaults{Interval: 30 * time.Second, Timeout: 10 * time.Second, FailAfter: 2, RecoverAfter: 2,
		FlapThreshold: 5, FlapWindow: 10 * time.Minute, UnknownAfter: 10 * time.Minute, DownInterval: 10 * time.Second}); c.Defaults != want {
		t.Errorf("Defaults = %+v, want %+v", c.Defaults, want)
	}
	if !reflect.DeepEqual(c.Node, Node{}) {
		t.Errorf("Node = %+v, want zero (defaults belong to the command line)", c.Node)
	}
	if len(c.Checks) != 3 {
		t.Fatalf("got %d checks, want 3", len(c.Checks))
	}

	api := c.CheckByName("api")
	if api == nil {
		t.Fatal("CheckByName(api) = nil")
	}
	wantAPI := Check{
		Name: "api", Type: TypeHTTP, URL: "https://api.example.com/health",
		Method:          "GET",
		Headers:         map[string]string{"Authorization": "Bearer secret-token"},
		BodyLimit:       1 << 20,
		FollowRedirects: true,
		IP:              "any",
		Expect: Expect{
			Status:       []StatusRange{{200, 299}},
			BodyContains: `"status":"ok"`,
			MaxLatency:   2 * time.Second,
			CertExpiry:   336 * time.Hour,
		},
		Interval: 30 * time.Second, Timeout: 10 * time.Second, FailAfter: 2, RecoverAfter: 2,
		DownInterval: 10 * time.Second, DependsWait: 10 * time.Second,
		Group: "Public API", DisplayName: "api", Notify: []string{"pager", "chat"},
		Severity:      "critical",
		FlapThreshold: 5, FlapWindow: 10 * time.Minute, UnknownAfter: 10 * time.Minute,
		Line: 14, Column: 5,
	}
	if !reflect.DeepEqual(*api, wantAPI) {
		t.Errorf("api =\n%+v\nwant\n%+v", *api, wantAPI)
	}
	db := c.CheckByName("db")
	wantDB := Check{Name: "db", Type: TypeTCP, Target: "db.example.com:5432", IP: "any",
		Interval: 30 * time.Second, Timeout: 10 * time.Second, FailAfter: 2, RecoverAfter: 2,
		DisplayName: "db", Severity: "critical", Line: 28, Column: 5,
		DownInterval: 10 * time.Second, DependsWait: 10 * time.Second,
		FlapThreshold: 5, FlapWindow: 10 * time.Minute, UnknownAfter: 10 * time.Minute}
	if db == nil || !reflect.DeepEqual(*db, wantDB) {
		t.Errorf("db = %+v, want %+v", db, wantDB)
	}
	edge := c.CheckByName("edge")
	wantEdge := Check{Name: "edge", Type: TypeICMP, Target: "203.0.113.10", Count: 3, MaxLoss: 50, IP: "any",
		Interval: 30 * time.Second, Timeout: 10 * time.Second, FailAfter: 2, RecoverAfter: 2,
		DisplayName: "edge", Severity: "critical", Line: 31, Column: 5,
		DownInterval: 10 * time.Second, DependsWait: 10 * time.Second,
		FlapThreshold: 5, FlapWindow: 10 * time.Minute, UnknownAfter: 10 * time.Minute}
	if edge == nil || !reflect.DeepEqual(*edge, wantEdge) {
		t.Errorf("edge = %+v, want %+v", edge, wantEdge)
	}
	if edge.TargetString() != "203.0.113.10" || db.Host() != "db.example.com" || api.Host() != "api.example.com" {
		t.Errorf("TargetString/Host: %q %q %q", edge.TargetString(), db.Host(), api.Host())
	}

	wantNotifiers := []Notifier{
		{Name: "pager", Type: "pagerduty", URL: "https://events.pagerduty.com/v2/enqueue",
			RoutingKey: "pd-routing-key", Line: 35, Column: 5},
		{Name: "chat", Type: "slack", URL: "https://hooks.slack.com/services/T0/B0/XXX", Line: 39, Column: 5},
		{Name: "hook", Type: "webhook", URL: "https://ops.example.com/vantage", Secret: "hook-secret", Line: 42, Column: 5},
	}
	if !reflect.DeepEqual(c.Notifiers, wantNotifiers) {
		t.Errorf("Notifiers =\n%+v\nwant\n%+v", c.Notifiers, wantNotifiers)
	}
	if n := c.NotifierByName("hook"); n == nil || n.Secret != "hook-secret" {
		t.Errorf("NotifierByName(hook) = %+v", n)
	}
	if n := c.NotifierByName("nope"); n != nil {
		t.Errorf("NotifierByName(nope) = %+v, want nil", n)
	}
	if want := (StatusPage{Title: "Example Status", Timezone: "UTC", Locale: "en"}); c.StatusPage != want {
		t.Errorf("StatusPage = %+v", c.StatusPage)
	}
	wantMaint := []Maintenance{{Checks: []string{"api"},
		Start: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)}}
	if !reflect.DeepEqual(c.Maintenance, wantMaint) {
		t.Errorf("Maintenance = %+v", c.Maintenance)
	}
	if want := (Store{168 * time.Hour, 720 * time.Hour, 0}); c.Store != want {
		t.Errorf("Store = %+v", c.Store)
	}
}

func TestFullNeedsEnvironment(t *testing.T) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse("full.yaml", data, env(nil))
	want := []string{
		"full.yaml:18:30: environment variable API_TOKEN is not set",
		"full.yaml:37:18: environment variable PAGERDUTY_KEY is not set",
		"full.yaml:41:10: environment variable SLACK_WEBHOOK_URL is not set",
		"full.yaml:45:13: environment variable HOOK_SECRET is not set",
	}
	checkErrors(t, err, want)
}

func TestEverything(t *testing.T) {
	data, err := os.ReadFile("testdata/everything.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, "everything.yaml", data, env(map[string]string{
		"TOKEN": "t0k", "OPSGENIE_KEY": "og", "SMTP_PASSWORD": "pw", "TG_TOKEN": "123:abc"}))

	wantNode := Node{Name: "eu-1", Region: "eu-west", Gossip: "0.0.0.0:7946", Advertise: "192.0.2.10:7946",
		Join: []string{"192.0.2.11:7946", "192.0.2.12:7946"}, HTTP: "127.0.0.1:8080", Data: "/var/lib/vantage",
		GossipKeyFile: "/etc/vantage/gossip.key", LogFormat: "json", LogLevel: "debug"}
	if !reflect.DeepEqual(c.Node, wantNode) {
		t.Errorf("Node = %+v", c.Node)
	}
	if c.Cluster.Quorum != 3 || c.Cluster.Gossip != "lan" {
		t.Errorf("Cluster = %+v, want majority quorum 3 of 4 and gossip lan", c.Cluster)
	}
	if want := (Defaults{Interval: time.Minute, Timeout: 15 * time.Second, FailAfter: 3, RecoverAfter: 4,
		FlapThreshold: 4, FlapWindow: 15 * time.Minute, UnknownAfter: 5 * time.Minute, DownInterval: 10 * time.Second}); c.Defaults != want {
		t.Errorf("Defaults = %+v", c.Defaults)
	}

	api := c.CheckByName("api.v2")
	if api.Method != "POST" || api.BodyLimit != 4096 || api.FollowRedirects || !api.InsecureTLS || api.IP != "6" ||
		api.Body != `{"ping": true}` || api.Interval != 20*time.Second || api.Timeout != 5*time.Second ||
		api.FailAfter != 1 || api.RecoverAfter != 1 || api.DisplayName != "API v2" ||
		api.Description != "The public API" || api.Severity != "warning" || api.Group != "Backend" {
		t.Errorf("api.v2 = %+v", *api)
	}
	if want := map[string]string{"X-Token": "t0k", "Content-Type": "application/json"}; !reflect.DeepEqual(api.Headers, want) {
		t.Errorf("headers = %v", api.Headers)
	}
	if want := map[string]string{"team": "core"}; !reflect.DeepEqual(api.Labels, want) {
		t.Errorf("labels (from a merge key) = %v", api.Labels)
	}
	if want := []StatusRange{{200, 200}, {301, 302}, {400, 499}}; !reflect.DeepEqual(api.Expect.Status, want) {
		t.Errorf("status = %v", api.Expect.Status)
	}
	if api.Expect.BodyRegex == nil || api.Expect.BodyRegex.String() != "^ok" || api.Expect.MaxLatency != 500*time.Millisecond ||
		api.Expect.CertExpiry != 72*time.Hour {
		t.Errorf("expect = %+v", api.Expect)
	}

	relay := c.CheckByName("smtp_relay")
	if relay.Target != "[2001:db8::25]:25" || relay.Send != "EHLO vantage\r\n" || relay.Expect.Banner != "220 " ||
		relay.Expect.BodyContains != "250" || relay.IP != "any" || relay.Interval != time.Minute ||
		relay.Timeout != 15*time.Second || relay.FailAfter != 3 || relay.RecoverAfter != 4 || relay.Expect.Status != nil {
		t.Errorf("smtp_relay = %+v", *relay)
	}
	gw := c.CheckByName("gw")
	if gw.Count != 10 || gw.MaxLoss != 20.5 || gw.IP != "4" || gw.Severity != "info" || gw.FlapThreshold != 0 ||
		gw.FlapWindow != time.Hour || gw.UnknownAfter != 0 {
		t.Errorf("gw = %+v", *gw)
	}

	ops := c.NotifierByName("ops")
	if ops.APIKey != "og" || ops.URL != "https://api.eu.opsgenie.com" || ops.Priority != "P2" ||
		!reflect.DeepEqual(ops.Fallback, []string{"mail", "tg"}) || ops.FallbackAfter != 5*time.Minute {
		t.Errorf("ops = %+v", *ops)
	}
	mail := c.NotifierByName("mail")
	if mail.SMTP != "smtp.example.com:465" || mail.TLS != "implicit" || mail.Username != "vantage" ||
		mail.Password != "pw" || mail.From != "Vantage <vantage@example.com>" ||
		!reflect.DeepEqual(mail.To, []string{"oncall@example.com", "ops@example.com"}) || mail.FallbackAfter != 0 {
		t.Errorf("mail = %+v", *mail)
	}
	tg := c.NotifierByName("tg")
	if tg.BotToken != "123:abc" || tg.ChatID != "-1001234567890" || tg.URL != "https://api.telegram.org" {
		t.Errorf("tg = %+v", *tg)
	}
	if pd := c.NotifierByName("pd"); pd.Severity != "warning" || pd.URL != "https://events.pagerduty.com/v2/enqueue" ||
		pd.Repeat != 30*time.Minute || pd.RateLimit == nil || *pd.RateLimit != (RateLimit{60, time.Minute}) {
		t.Errorf("pd = %+v", *pd)
	}
	if relay.FlapThreshold != 4 || relay.FlapWindow != 15*time.Minute || relay.UnknownAfter != 5*time.Minute {
		t.Errorf("smtp_relay alerting = %d %v %v", relay.FlapThreshold, relay.FlapWindow, relay.UnknownAfter)
	}
	wantRoutes := []Route{
		{Match: RouteMatch{Severity: "warning", Group: "Backend", Labels: map[string]string{"team": "core"}},
			Notify: []string{"pd"}, Repeat: 2 * time.Hour, RepeatSet: true, Continue: true, Line: 118, Column: 5},
		{Notify: []string{"hook"}, Line: 122, Column: 5},
	}
	if !reflect.DeepEqual(c.Routes, wantRoutes) {
		t.Errorf("Routes = %+v", c.Routes)
	}
	if !reflect.DeepEqual(c.Coverage.Notify, []string{"tg"}) {
		t.Errorf("Coverage = %+v", c.Coverage)
	}
	if hook := c.NotifierByName("hook"); hook.Secret != "${not-a-var}" || hook.Headers["X-Env"] != "prod" {
		t.Errorf("hook = %+v", *hook)
	}
	if want := (StatusPage{Title: "Example Status", Description: "Live status of Example services", URL: "https://status.example.com",
		Timezone: "UTC", Locale: "en"}); c.StatusPage != want {
		t.Errorf("StatusPage = %+v", c.StatusPage)
	}
	if want := (Store{24 * time.Hour, 0, 8760 * time.Hour}); c.Store != want {
		t.Errorf("Store = %+v", c.Store)
	}
	start := time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		check string
		at    time.Time
		want  bool
	}{
		{"gw", start.Add(-time.Second), false},
		{"gw", start, true},
		{"smtp_relay", start.Add(time.Hour), true},
		{"gw", start.Add(2*time.Hour - time.Nanosecond), true},
		{"gw", start.Add(2 * time.Hour), false},
		{"api.v2", start.Add(time.Hour), false},
	} {
		if got := c.InMaintenance(tc.check, tc.at); got != tc.want {
			t.Errorf("InMaintenance(%q, %v) = %v, want %v", tc.check, tc.at, got, tc.want)
		}
	}
}

func TestEmptyFiles(t *testing.T) {
	for _, doc := range []string{"", "\n\n", "# nothing\n  # but comments\n", "---\n", "---\n...\n", "~\n"} {
		c, err := Parse("e.yaml", []byte(doc), env(nil))
		if err != nil {
			t.Errorf("%q: %v", doc, err)
			continue
		}
		if len(c.Checks) != 0 || len(c.Notifiers) != 0 || c.Defaults.Interval != 30*time.Second ||
			c.Cluster.Quorum != 1 || c.Cluster.Gossip != "wan" || c.StatusPage.Title != "Status" ||
			c.Store.RetainRaw != 168*time.Hour {
			t.Errorf("%q: defaults not filled: %+v", doc, c)
		}
	}
}

func TestDefaultsMerge(t *testing.T) {
	c := mustParse(t, "m.yaml", y(`
defaults:
  interval: 2m
  fail_after: 5
checks:
  - {name: a, type: tcp, target: "a:1"}
  - {name: b, type: tcp, target: "b:1", interval: 10s, timeout: 2s, fail_after: 1, recover_after: 7}
  - {name: c, type: tcp, target: "c:1", timeout: 1m}
`), env(nil))
	for _, tc := range []struct {
		name              string
		interval, timeout time.Duration
		fail, recover     int
	}{
		{"a", 2 * time.Minute, 10 * time.Second, 5, 2},
		{"b", 10 * time.Second, 2 * time.Second, 1, 7},
		{"c", 2 * time.Minute, time.Minute, 5, 2},
	} {
		ck := c.CheckByName(tc.name)
		if ck.Interval != tc.interval || ck.Timeout != tc.timeout || ck.FailAfter != tc.fail || ck.RecoverAfter != tc.recover {
			t.Errorf("%s: interval %v timeout %v fail_after %d recover_after %d, want %v %v %d %d", tc.name,
				ck.Interval, ck.Timeout, ck.FailAfter, ck.RecoverAfter, tc.interval, tc.timeout, tc.fail, tc.recover)
		}
	}
}

func TestClusterQuorumDefault(t *testing.T) {
	for regions, want := range map[string]int{"[]": 1, "[a]": 1, "[a, b]": 2, "[a, b, c]": 2, "[a, b, c, d, e]": 3} {
		c := mustParse(t, "q.yaml", []byte("cluster: {regions: "+regions+"}\n"), env(nil))
		if c.Cluster.Quorum != want {
			t.Errorf("regions %s: quorum %d, want %d", regions, c.Cluster.Quorum, want)
		}
	}
}

func TestEnvExpansion(t *testing.T) {
	c := mustParse(t, "env.yaml", y(`
cluster:
  regions: ["${R1}", "${R2}"]
  quorum: ${QUORUM}
defaults:
  interval: ${INTERVAL}
checks:
  - name: ${NAME}
    type: tcp
    target: ${HOST}:${PORT}
    send: "cost: $$5, literal: $${HOME}, ${EMPTY}done"
    labels: {owner: "${USER_}"}
node:
  insecure_gossip: ${INSECURE}
  join: ${SEEDS}
`), env(map[string]string{"R1": "eu", "R2": "us", "QUORUM": "2", "INTERVAL": "45s", "NAME": "db",
		"HOST": "db.local", "PORT": "5432", "EMPTY": "", "USER_": "me", "INSECURE": "true", "SEEDS": ""}))
	ck := c.CheckByName("db")
	if ck == nil || ck.Target != "db.local:5432" || ck.Send != "cost: $$5, literal: ${HOME}, done" ||
		ck.Labels["owner"] != "me" || ck.Interval != 45*time.Second {
		t.Fatalf("check = %+v", ck)
	}
	if c.Cluster.Quorum != 2 || !c.Node.InsecureGossip || c.Node.Join != nil {
		t.Errorf("cluster %+v node %+v", c.Cluster, c.Node)
	}
}

func TestAliases(t *testing.T) {
	c := mustParse(t, "a.yaml", y(`
x-http: &http
  type: http
  expect: {status: [200]}
  notify: &who [pager]
notifiers:
  - {name: pager, type: pagerduty, routing_key: k}
checks:
  - <<: *http
    name: one
    url: https://one.example.com
  - <<: [*http]
    name: two
    url: https://two.example.com
    expect: {status: [204]}
  - name: three
    type: tcp
    target: three:22
    notify: *who
`), env(nil))
	if got := c.CheckByName("one"); got.Type != "http" || !reflect.DeepEqual(got.Expect.Status, []StatusRange{{200, 200}}) ||
		!reflect.DeepEqual(got.Notify, []string{"pager"}) {
		t.Errorf("one = %+v", got)
	}
	if got := c.CheckByName("two"); !reflect.DeepEqual(got.Expect.Status, []StatusRange{{204, 204}}) {
		t.Errorf("two: explicit key should win over the merge: %+v", got.Expect)
	}
	if got := c.CheckByName("three"); !reflect.DeepEqual(got.Notify, []string{"pager"}) {
		t.Errorf("three = %+v", got)
	}
}

func TestMethodIsUppercased(t *testing.T) {
	c := mustParse(t, "m.yaml", []byte("checks: [{name: a, type: http, url: 'http://a', method: delete}]\n"), env(nil))
	if c.Checks[0].Method != "DELETE" {
		t.Errorf("method = %q", c.Checks[0].Method)
	}
}

// checkErrors asserts that err is an Errors whose lines are exactly want.
func checkErrors(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want:\n%s", strings.Join(want, "\n"))
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %T is not Errors: %v", err, err)
	}
	got := strings.Split(err.Error(), "\n")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(errs) != len(got) {
		t.Errorf("len(Errors) = %d, lines = %d", len(errs), len(got))
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		env  map[string]string
		want []string
	}{
		// YAML itself
		{"syntax error", `
checks:
  - name: a
	type: http
`, nil, []string{"t.yaml:2:1: invalid YAML: found a tab character that violates indentation"}},
		{"unclosed flow", "a: [1, 2\nb: 3\n", nil, []string{"t.yaml:2:1: invalid YAML: did not find expected ',' or ']'"}},
		{"bad indentation", `
statuspage:
  title: a
  url: https://a
 description: b
`, nil, []string{"t.yaml:4:1: invalid YAML: did not find expected key"}},
		{"unknown anchor", "statuspage: *nope\n", nil, []string{"t.yaml:1:1: invalid YAML: unknown anchor 'nope' referenced"}},
		{"two documents", `
checks: []
---
checks: []
`, nil, []string{"t.yaml:2:1: the file holds more than one YAML document; put everything in one"}},
		{"root is a list", "- a\n", nil, []string{"t.yaml:1:1: the configuration must be a mapping, got a list"}},
		{"root is a scalar", "hello\n", nil, []string{`t.yaml:1:1: the configuration must be a mapping, got "hello"`}},
		{"duplicate key", `
statuspage:
  title: a
  title: b
`, nil, []string{`t.yaml:3:3: duplicate key "title" in statuspage (first at line 2)`}},
		{"non-string key", "{[a]: 1}\n", nil, []string{"t.yaml:1:2: keys in the configuration must be strings, got a list"}},
		{"bad merge", "statuspage: {<<: 1}\n", nil, []string{`t.yaml:1:18: a merge (<<) value must be a mapping or a list of mappings, got "1"`}},

		// unknown keys
		{"unknown top-level key", "checkz: []\n", nil, []string{`t.yaml:1:1: unknown key "checkz" in the configuration`}},
		{"unknown key in check", `
checks:
  - name: a
    type: tcp
    target: a:1
    foo: 1
`, nil, []string{`t.yaml:5:5: unknown key "foo" in check`}},
		{"unknown key in expect", "checks: [{name: a, type: tcp, target: 'a:1', expect: {latency: 1s}}]\n", nil,
			[]string{`t.yaml:1:55: unknown key "latency" in expect`}},
		{"unknown key in notifier", "notifiers: [{name: a, type: slack, url: 'https://x', channel: c}]\n", nil,
			[]string{`t.yaml:1:54: unknown key "channel" in notifier`}},
		{"unknown keys in sections", `
node: {port: 1}
cluster: {voters: 1}
defaults: {retries: 1}
statuspage: {theme: dark}
maintenance: [{checks: [a], start: 2026-01-01T00:00:00Z, end: 2026-01-02T00:00:00Z, why: x}]
store: {path: x, retention: {hourly: 1h}}
checks: [{name: a, type: tcp, target: 'a:1'}]
`, nil, []string{
			`t.yaml:1:8: unknown key "port" in node`,
			`t.yaml:2:11: unknown key "voters" in cluster`,
			`t.yaml:3:12: unknown key "retries" in defaults`,
			`t.yaml:4:14: unknown key "theme" in statuspage`,
			`t.yaml:5:85: unknown key "why" in maintenance window`,
			`t.yaml:6:9: unknown key "path" in store`,
			`t.yaml:6:30: unknown key "hourly" in store.retention`,
		}},

		// wrong types
		{"string where a list is wanted", "checks: api\n", nil, []string{`t.yaml:1:9: checks must be a list, got "api"`}},
		{"list where a mapping is wanted", "defaults: [1]\n", nil, []string{"t.yaml:1:11: defaults must be a mapping, got a list"}},
		{"non-integer quorum", "cluster: {quorum: two}\n", nil, []string{`t.yaml:1:19: quorum must be an integer, got "two"`}},
		{"float quorum", "cluster: {quorum: 1.5}\n", nil, []string{`t.yaml:1:19: quorum must be an integer, got "1.5"`}},
		{"quoted integer", "defaults: {fail_after: \"3\"}\n", nil, []string{`t.yaml:1:24: fail_after must be an integer, got "3"`}},
		{"huge integer", "defaults: {fail_after: 99999999999999999999999}\n", nil,
			[]string{`t.yaml:1:24: fail_after must be an integer, got "99999999999999999999999"`}},
		{"bool", "node: {insecure_gossip: yes}\n", nil, []string{`t.yaml:1:25: insecure_gossip must be true or false, got "yes"`}},
		{"mapping where a string is wanted", "statuspage: {title: {a: b}}\n", nil, []string{"t.yaml:1:21: title must be a string, got a mapping"}},
		{"list item of the wrong type", "checks: [{name: a, type: tcp, target: 'a:1', notify: [[x]]}]\n", nil,
			[]string{"t.yaml:1:55: each entry of notify must be a string, got a list"}},
		{"check is not a mapping", "checks: [a, ~]\n", nil, []string{
			`t.yaml:1:10: check must be a mapping, got "a"`,
			"t.yaml:1:13: check must be a mapping with at least name and type, got an empty value"}},

		// environment
		{"unset variable", `
checks:
  - name: a
    type: http
    url: https://a.example.com
    headers: {Authorization: "Bearer ${API_TOKEN}"}
`, nil, []string{"t.yaml:5:30: environment variable API_TOKEN is not set"}},
		{"two unset variables", "statuspage: {title: '${A} ${B}'}\n", nil, []string{
			"t.yaml:1:21: environment variable A is not set",
			"t.yaml:1:21: environment variable B is not set"}},
		{"bad variable syntax", "statuspage: {title: '${A', description: '${1X}'}\n", nil, []string{
			"t.yaml:1:21: unterminated ${ in value (write $${ for a literal ${)",
			`t.yaml:1:41: invalid environment variable name "1X" in ${...}`}},
		{"variable gives the wrong type", "cluster: {quorum: '${Q}'}\n", map[string]string{"Q": "many"},
			[]string{`t.yaml:1:19: quorum must be an integer, got "many"`}},

		// durations, interval, timeout
		{"bad duration", "defaults: {interval: 30}\n", nil,
			[]string{`t.yaml:1:22: interval must be a duration such as 30s, 2m, 1h or 7d, got "30"`}},
		{"interval below 1s in defaults", `
defaults:
  interval: 500ms
  timeout: 100ms
`, nil, []string{"t.yaml:2:3: interval must be at least 1s, got 500ms"}},
		{"interval below 1s in a check", `
checks:
  - name: a
    type: tcp
    target: a:1
    interval: 999ms
    timeout: 1ms
`, nil, []string{"t.yaml:5:5: interval must be at least 1s, got 999ms"}},
		{"timeout not positive", "defaults: {timeout: 0s}\n", nil, []string{"t.yaml:1:12: timeout must be positive, got 0s"}},
		{"timeout >= interval in defaults", `
defaults:
  interval: 10s
  timeout: 10s
`, nil, []string{"t.yaml:3:3: timeout 10s must be less than interval 10s"}},
		{"check timeout >= check interval", `
checks:
  - name: a
    type: tcp
    target: a:1
    interval: 5s
    timeout: 5s
`, nil, []string{"t.yaml:6:5: timeout 5s must be less than interval 5s"}},
		{"check timeout >= defaults interval", `
defaults:
  interval: 20s
checks:
  - name: a
    type: tcp
    target: a:1
    timeout: 30s
`, nil, []string{"t.yaml:7:5: timeout 30s must be less than interval 20s"}},
		{"defaults timeout >= check interval", `
defaults:
  timeout: 10s
checks:
  - name: a
    type: tcp
    target: a:1
    interval: 5s
  - name: b
    type: tcp
    target: b:1
    interval: 8s
`, nil, []string{
			`t.yaml:2:3: timeout 10s must be less than interval 5s of check "a"`,
			`t.yaml:2:3: timeout 10s must be less than interval 8s of check "b"`}},
		{"implicit timeout against a written defaults timeout", `
defaults: {timeout: 10s}
checks:
  - name: a
    type: tcp
    target: a:1
    interval: 10s
`, nil, []string{"t.yaml:1:12: timeout 10s must be less than interval 10s of check \"a\""}},
		{"fail_after and recover_after", "defaults: {fail_after: 0, recover_after: -1}\n", nil, []string{
			"t.yaml:1:12: fail_after must be at least 1, got 0",
			"t.yaml:1:27: recover_after must be at least 1, got -1"}},

		// check names and types
		{"duplicate check name at the second occurrence", `
checks:
  - name: api
    type: tcp
    target: a:1
  - name: db
    type: tcp
    target: b:1
  - name: api
    type: icmp
    target: c
`, nil, []string{`t.yaml:8:5: duplicate check name "api" (first at line 2)`}},
		{"bad check name", "checks: [{name: My_API, type: tcp, target: 'a:1'}]\n", nil,
			[]string{`t.yaml:1:11: check name "My_API" may only contain a-z, 0-9, '.', '_' and '-'`}},
		{"empty names", `
checks: [{name: "", type: tcp, target: "a:1"}]
notifiers: [{name: "", type: slack, url: "https://a"}]
`, nil, []string{
			"t.yaml:1:11: check name must not be empty",
			"t.yaml:2:14: notifier name must not be empty"}},
		{"missing name and type", "checks: [{url: 'http://a'}]\n", nil, []string{
			"t.yaml:1:10: check needs a name",
			"t.yaml:1:10: check needs a type: http, tcp, icmp, dns or push"}},
		{"unknown check type", "checks: [{name: a, type: smtp}]\n", nil,
			[]string{`t.yaml:1:20: check type must be http, tcp, icmp, dns or push, got "smtp"`}},
		{"http without url", "checks: [{name: a, type: http}]\n", nil, []string{`t.yaml:1:10: http check "a" needs a url`}},
		{"http url", `
checks:
  - {name: a, type: http, url: "ftp://a.example.com"}
  - {name: b, type: http, url: "https://"}
  - {name: c, type: http, url: "http://a b"}
  - {name: d, type: http, url: "http://a:70000/"}
  - {name: e, type: http, url: ""}
`, nil, []string{
			"t.yaml:2:27: url must be an http:// or https:// URL",
			"t.yaml:3:27: url has no host",
			`t.yaml:4:27: url is not a valid URL: invalid character " " in host name`,
			`t.yaml:5:27: url has an invalid port "70000"`,
			"t.yaml:6:27: url must not be empty"}},
		{"tcp target", `
checks:
  - {name: a, type: tcp}
  - {name: b, type: tcp, target: db.example.com}
  - {name: c, type: tcp, target: "db:0"}
  - {name: d, type: tcp, target: "db:65536"}
  - {name: e, type: tcp, target: ":22"}
  - {name: f, type: tcp, target: "bad host:22"}
`, nil, []string{
			`t.yaml:2:5: tcp check "a" needs a target (HOST:PORT)`,
			"t.yaml:3:26: target must be HOST:PORT",
			`t.yaml:4:26: target has an invalid port "0" (want 1-65535)`,
			`t.yaml:5:26: target has an invalid port "65536" (want 1-65535)`,
			"t.yaml:6:26: target must be HOST:PORT (the host is missing)",
			`t.yaml:7:26: target has an invalid host "bad host"`}},
		{"icmp target", `
checks:
  - {name: a, type: icmp}
  - {name: b, type: icmp, target: "h.example.com:80"}
  - {name: c, type: icmp, target: "2001:db8::1"}
`, nil, []string{
			`t.yaml:2:5: icmp check "a" needs a target (HOST)`,
			"t.yaml:3:27: target must be a host or IP address without a port"}},
		{"keys of another check type", `
checks:
  - name: a
    type: http
    url: http://a
    send: x
    count: 2
    expect: {banner: x}
  - name: b
    type: tcp
    target: b:1
    url: http://b
    expect: {status: [200], cert_expiry: 1h}
  - name: c
    type: icmp
    target: c
    max_loss: 5
    expect: {body_contains: x, max_latency: 1s}
`, nil, []string{
			`t.yaml:5:5: key "send" does not apply to http checks (it is for tcp checks)`,
			`t.yaml:6:5: key "count" does not apply to http checks (it is for icmp checks)`,
			`t.yaml:7:14: key "banner" in expect does not apply to http checks (it is for tcp checks)`,
			`t.yaml:11:5: key "url" does not apply to tcp checks (it is for http checks)`,
			`t.yaml:12:14: key "status" in expect does not apply to tcp checks (it is for http checks)`,
			`t.yaml:12:29: key "cert_expiry" in expect does not apply to tcp checks (it is for http checks)`,
			`t.yaml:17:14: key "body_contains" in expect does not apply to icmp checks (it is for http or tcp checks)`}},

		// check keys
		{"http keys", `
checks:
  - name: a
    type: http
    url: http://a
    method: "GE T"
    headers: {"X Y": z, Ok: "a\nb"}
    body_limit: 0
    follow_redirects: 1
    insecure_skip_verify: "true"
`, nil, []string{
			`t.yaml:5:5: method "GE T" is not a valid HTTP method`,
			`t.yaml:6:15: header name "X Y" is not valid`,
			`t.yaml:6:25: header "Ok" must not contain line breaks`,
			"t.yaml:7:5: body_limit must be a positive number of bytes, got 0",
			`t.yaml:8:23: follow_redirects must be true or false, got "1"`,
			`t.yaml:9:27: insecure_skip_verify must be true or false, got "true"`}},
		{"icmp keys", `
checks:
  - {name: a, type: icmp, target: a, count: 0, max_loss: 100.5}
  - {name: b, type: icmp, target: b, count: 101, max_loss: -1}
  - {name: c, type: icmp, target: c, count: 100, max_loss: 0, ip: 6}
  - {name: d, type: icmp, target: d, ip: ipv4}
`, nil, []string{
			"t.yaml:2:38: count must be between 1 and 100, got 0",
			"t.yaml:2:48: max_loss must be a percentage between 0 and 100, got 100.5",
			"t.yaml:3:38: count must be between 1 and 100, got 101",
			"t.yaml:3:50: max_loss must be a percentage between 0 and 100, got -1",
			`t.yaml:5:38: ip must be 4, 6 or any, got "ipv4"`}},
		{"expect status", `
checks:
  - name: a
    type: http
    url: http://a
    expect:
      status: [99, "600", "300-200", "2xx-3xx", true, {a: 1}]
`, nil, []string{
			`t.yaml:6:16: status "99" must be a code from 100 to 599 or a range such as "200-299"`,
			`t.yaml:6:20: status "600" must be a code from 100 to 599 or a range such as "200-299"`,
			`t.yaml:6:27: status range "300-200" is backwards`,
			`t.yaml:6:38: status "2xx-3xx" must be a code from 100 to 599 or a range such as "200-299"`,
			`t.yaml:6:49: status "true" must be a code from 100 to 599 or a range such as "200-299"`,
			`t.yaml:6:55: each status must be a code such as 200 or a range such as "200-299", got a mapping`}},
		{"expect status empty and not a list", `
checks:
  - {name: a, type: http, url: "http://a", expect: {status: []}}
  - {name: b, type: http, url: "http://b", expect: {status: 200}}
`, nil, []string{
			"t.yaml:2:53: status must list at least one code or range",
			`t.yaml:3:61: status must be a list, got "200"`}},
		{"body_regex does not compile", `
checks:
  - name: a
    type: http
    url: http://a
    expect:
      body_regex: "a(b"
`, nil, []string{`t.yaml:6:7: body_regex "a(b" does not compile: missing closing )`}},
		{"max_latency not below timeout", `
checks:
  - name: a
    type: http
    url: http://a
    timeout: 3s
    expect: {max_latency: 3s}
  - name: b
    type: tcp
    target: b:1
    expect: {max_latency: 11s}
  - name: c
    type: tcp
    target: c:1
    expect: {max_latency: -1s, cert_expiry: 1h}
`, nil, []string{
			"t.yaml:6:14: max_latency 3s must be less than the timeout 3s",
			"t.yaml:10:14: max_latency 11s must be less than the timeout 10s",
			"t.yaml:14:14: max_latency must not be negative, got -1s",
			`t.yaml:14:32: key "cert_expiry" in expect does not apply to tcp checks (it is for http checks)`}},
		{"notify and severity", `
notifiers: [{name: pager, type: pagerduty, routing_key: k}]
checks:
  - name: a
    type: tcp
    target: a:1
    notify: [pager, pagr, pager]
    severity: fatal
    labels: [a]
`, nil, []string{
			`t.yaml:6:21: unknown notifier "pagr"`,
			`t.yaml:6:27: notifier "pager" is listed twice`,
			`t.yaml:7:5: severity must be critical, warning or info, got "fatal"`,
			"t.yaml:8:13: labels must be a mapping, got a list"}},

		// notifiers
		{"notifier names and types", `
notifiers:
  - {name: a, type: slack, url: "https://a"}
  - {name: a, type: slack, url: "https://b"}
  - {name: "B", type: sms}
  - {type: slack, url: "https://c"}
`, nil, []string{
			`t.yaml:3:6: duplicate notifier name "a" (first at line 2)`,
			`t.yaml:4:6: notifier name "B" may only contain a-z, 0-9, '.', '_' and '-'`,
			`t.yaml:4:17: notifier type must be pagerduty, opsgenie, slack, discord, msteams, telegram, webhook, email, twilio or sms_http, got "sms"`,
			"t.yaml:5:5: notifier needs a name"}},
		{"notifier required keys", `
notifiers:
  - {name: pd, type: pagerduty}
  - {name: og, type: opsgenie}
  - {name: sl, type: slack}
  - {name: di, type: discord}
  - {name: ms, type: msteams}
  - {name: tg, type: telegram}
  - {name: wh, type: webhook}
  - {name: em, type: email}
`, nil, []string{
			`t.yaml:2:5: pagerduty notifier "pd" needs routing_key`,
			`t.yaml:3:5: opsgenie notifier "og" needs api_key`,
			`t.yaml:4:5: slack notifier "sl" needs url`,
			`t.yaml:5:5: discord notifier "di" needs url`,
			`t.yaml:6:5: msteams notifier "ms" needs url`,
			`t.yaml:7:5: telegram notifier "tg" needs bot_token`,
			`t.yaml:7:5: telegram notifier "tg" needs chat_id`,
			`t.yaml:8:5: webhook notifier "wh" needs url`,
			`t.yaml:9:5: email notifier "em" needs smtp`,
			`t.yaml:9:5: email notifier "em" needs from`,
			`t.yaml:9:5: email notifier "em" needs to: at least one address`}},
		{"notifier keys of another type", `
notifiers:
  - name: s
    type: slack
    url: https://hooks.slack.com/x
    routing_key: k
    to: [a@b.c]
  - name: e
    type: email
    smtp: mail:25
    from: a@b.c
    to: [c@d.e]
    url: https://x
`, nil, []string{
			`t.yaml:5:5: key "routing_key" does not apply to slack notifiers`,
			`t.yaml:6:5: key "to" does not apply to slack notifiers`,
			`t.yaml:12:5: key "url" does not apply to email notifiers`}},
		{"notifier values", `
notifiers:
  - {name: pd, type: pagerduty, routing_key: k, url: "http://", severity: page}
  - {name: og, type: opsgenie, api_key: k, priority: P0}
  - {name: em, type: email, smtp: mail, from: nobody, to: [x@y.z, "not an address"], tls: ssl}
  - {name: wh, type: webhook, url: "https://x", headers: {"a b": c}}
  - {name: tg, type: telegram, bot_token: "${EMPTY}", chat_id: 1}
`, map[string]string{"EMPTY": ""}, []string{
			"t.yaml:2:49: url has no host",
			`t.yaml:2:65: severity must be critical, error, warning or info, got "page"`,
			`t.yaml:3:44: priority must be P1, P2, P3, P4 or P5, got "P0"`,
			"t.yaml:4:29: smtp must be HOST:PORT",
			`t.yaml:4:41: from "nobody" is not an email address`,
			`t.yaml:4:67: "not an address" is not an email address`,
			`t.yaml:4:86: tls must be starttls, implicit or none, got "ssl"`,
			`t.yaml:5:59: header name "a b" is not valid`,
			"t.yaml:6:32: bot_token must not be empty"}},
		{"fallback", `
notifiers:
  - name: a
    type: slack
    url: https://a
    fallback: [a, ghost, b, b]
    fallback_after: 0s
  - {name: b, type: slack, url: "https://b", fallback_after: soon}
`, nil, []string{
			`t.yaml:5:16: notifier "a" cannot fall back to itself`,
			`t.yaml:5:19: unknown notifier "ghost" in fallback`,
			`t.yaml:5:29: notifier "b" is listed twice in fallback`,
			"t.yaml:6:5: fallback_after must be positive, got 0s",
			`t.yaml:7:62: fallback_after must be a duration such as 30s, 2m, 1h or 7d, got "soon"`}},
		{"fallback cycle", `
notifiers:
  - {name: a, type: slack, url: "https://a", fallback: [b]}
  - {name: b, type: slack, url: "https://b", fallback: [c]}
  - {name: c, type: slack, url: "https://c", fallback: [a]}
  - {name: d, type: slack, url: "https://d", fallback: [a]}
  - {name: e, type: slack, url: "https://e", fallback: [f]}
  - {name: f, type: slack, url: "https://f", fallback: [e]}
`, nil, []string{
			"t.yaml:4:57: fallback cycle: a -> b -> c -> a",
			"t.yaml:7:57: fallback cycle: e -> f -> e"}},

		// cluster and node
		{"cluster", `
cluster:
  regions: [eu, us, eu, ""]
  quorum: 0
  gossip: fast
  canaries: ["udp://1.1.1.1:53", "tcp://1.1.1.1", "tcp://1.1.1.1:53/x", "https://", "ftp://x"]
`, nil, []string{
			`t.yaml:2:21: region "eu" is listed twice`,
			"t.yaml:2:25: region names must not be empty",
			"t.yaml:3:3: quorum must be at least 1, got 0",
			`t.yaml:4:3: gossip must be wan, lan or local, got "fast"`,
			`t.yaml:5:14: canary "udp://1.1.1.1:53" must be tcp://HOST:PORT or an http:// or https:// URL`,
			`t.yaml:5:34: canary "tcp://1.1.1.1" must be HOST:PORT`,
			`t.yaml:5:51: canary "tcp://1.1.1.1:53/x" must be tcp://HOST:PORT`,
			`t.yaml:5:73: canary "https://" has no host`,
			`t.yaml:5:85: canary "ftp://x" must be tcp://HOST:PORT or an http:// or https:// URL`}},
		{"quorum above regions", "cluster: {regions: [a, b], quorum: 3}\n", nil,
			[]string{"t.yaml:1:28: quorum 3 is more than the number of regions in cluster.regions (2)"}},
		{"node", `
node:
  gossip: "0.0.0.0"
  advertise: ":7946"
  http: "localhost:http"
  join: ["a:1", "b", 7]
  log_format: xml
  log_level: trace
  insecure_gossip: 1
`, nil, []string{
			"t.yaml:2:3: gossip must be HOST:PORT",
			"t.yaml:3:3: advertise must be HOST:PORT (the host is missing)",
			`t.yaml:4:3: http has an invalid port "http" (want 0-65535)`,
			`t.yaml:5:17: join address "b" must be HOST:PORT`,
			`t.yaml:5:22: join address "7" must be HOST:PORT`,
			`t.yaml:6:3: log_format must be text or json, got "xml"`,
			`t.yaml:7:3: log_level must be debug, info, warn or error, got "trace"`,
			`t.yaml:8:20: insecure_gossip must be true or false, got "1"`}},
		{"node join string", "node: {join: 'a:1, b:x'}\n", nil,
			[]string{`t.yaml:1:14: join address "b:x" has an invalid port "x" (want 1-65535)`}},
		{"node region not in cluster regions", `
cluster: {regions: [eu, us]}
node: {region: ap}
`, nil, []string{`t.yaml:2:8: region "ap" is not one of cluster.regions (eu, us)`}},

		// statuspage, maintenance, store
		{"statuspage url", "statuspage: {url: 'status.example.com'}\n", nil,
			[]string{"t.yaml:1:14: url must be an http:// or https:// URL"}},
		{"statuspage short api token", "statuspage: {api_token: 'secret'}\n", nil,
			[]string{"t.yaml:1:14: api_token must be at least 16 characters, got 6"}},
		{"maintenance", `
checks: [{name: a, type: tcp, target: "a:1"}]
maintenance:
  - checks: [a, b]
    start: 2026-12-01T03:00:00Z
    end: 2026-12-01T03:00:00Z
  - checks: []
    start: "2026-12-01 02:00"
  - title: nothing
  - x
`, nil, []string{
			`t.yaml:3:17: unknown check "b"`,
			"t.yaml:5:5: end 2026-12-01T03:00:00Z must be after start 2026-12-01T03:00:00Z",
			"t.yaml:6:5: maintenance window needs checks: at least one check name",
			"t.yaml:6:5: maintenance window needs end (an RFC 3339 time such as 2026-12-01T02:00:00Z), or every and duration",
			`t.yaml:7:12: start must be an RFC 3339 time such as 2026-12-01T02:00:00Z, got "2026-12-01 02:00"`,
			"t.yaml:8:5: maintenance window needs checks: at least one check name",
			"t.yaml:8:5: maintenance window needs start (an RFC 3339 time such as 2026-12-01T02:00:00Z), or every and duration",
			"t.yaml:8:5: maintenance window needs end (an RFC 3339 time such as 2026-12-01T02:00:00Z), or every and duration",
			`t.yaml:9:5: maintenance window must be a mapping, got "x"`}},
		{"store", "store: {retention: {raw: -1h, minute: 1mo, daily: -5m}}\n", nil, []string{
			"t.yaml:1:21: raw must not be negative, got -1h0m0s",
			`t.yaml:1:39: minute must be a duration such as 30s, 2m, 1h or 7d, got "1mo"`,
			"t.yaml:1:44: daily must not be negative, got -5m0s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", y(tc.doc), env(tc.env))
			checkErrors(t, err, tc.want)
		})
	}
}

func TestSeveralProblemsAllReportedInOrder(t *testing.T) {
	_, err := Parse("cfg/vantage.yaml", y(`
checks:
  - name: api
    type: http
    url: https://api.example.com
    notify: [nobody]
    timeout: 40s
  - name: api
    type: tcp
    target: nowhere
    body: x
notifiers:
  - name: chat
    type: slack
cluster:
  quorum: many
bogus: true
`), env(nil))
	checkErrors(t, err, []string{
		`cfg/vantage.yaml:5:14: unknown notifier "nobody"`,
		"cfg/vantage.yaml:6:5: timeout 40s must be less than interval 30s",
		`cfg/vantage.yaml:7:5: duplicate check name "api" (first at line 2)`,
		"cfg/vantage.yaml:9:5: target must be HOST:PORT",
		`cfg/vantage.yaml:10:5: key "body" does not apply to tcp checks (it is for http checks)`,
		`cfg/vantage.yaml:12:5: slack notifier "chat" needs url`,
		`cfg/vantage.yaml:15:11: quorum must be an integer, got "many"`,
		`cfg/vantage.yaml:16:1: unknown key "bogus" in the configuration`,
	})
	var errs Errors
	if errors.As(err, &errs) {
		var one *Error
		if !errors.As(err, &one) || one != errs[0] {
			t.Errorf("errors.As(*Error) should find the first problem")
		}
		if errs[0].File != "cfg/vantage.yaml" || errs[0].Line != 5 || errs[0].Column != 14 || errs[0].Msg != `unknown notifier "nobody"` {
			t.Errorf("first = %+v", *errs[0])
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "missing.yaml"))
	var errs Errors
	if err == nil || errors.As(err, &errs) || !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "load config: ") {
		t.Errorf("missing file: %v", err)
	}

	path := filepath.Join(dir, "ok.yaml")
	if err := os.WriteFile(path, []byte("checks: [{name: a, type: icmp, target: '${VANTAGE_TEST_HOST}'}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VANTAGE_TEST_HOST", "192.0.2.1")
	c, err := Load(path)
	if err != nil || c.Path != path || c.Checks[0].Target != "192.0.2.1" {
		t.Fatalf("Load = %+v, %v", c, err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("checks: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if !errors.As(err, &errs) || err.Error() != bad+`:1:9: checks must be a list, got "x"` {
		t.Errorf("Load(bad) = %v", err)
	}
}

func TestLookupsOnNil(t *testing.T) {
	var c *Config
	if c.CheckByName("a") != nil || c.NotifierByName("a") != nil || c.InMaintenance("a", time.Now()) {
		t.Error("nil Config lookups should find nothing")
	}
}

func TestErrorFormat(t *testing.T) {
	errs := Errors{{File: "a.yaml", Line: 3, Column: 7, Msg: "boom"}, {File: "a.yaml", Line: 4, Column: 1, Msg: "bang"}}
	if got, want := errs.Error(), "a.yaml:3:7: boom\na.yaml:4:1: bang"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestAliasExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-big: &big\n")
	for i := range 500 {
		fmt.Fprintf(&b, "  k%d: v\n", i)
	}
	b.WriteString("checks:\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "  - {name: c%d, type: tcp, target: 'a:1', labels: *big}\n", i)
	}
	_, err := Parse("big.yaml", []byte(b.String()), env(nil))
	var errs Errors
	if !errors.As(err, &errs) || !strings.HasSuffix(errs[len(errs)-1].Msg, "aliases expand the configuration to too many values") {
		t.Fatalf("err = %v", err)
	}
}

// TestImplicitTimeout: with no timeout written anywhere, setting only an
// interval gives a valid check whose timeout is min(10s, 3/4 interval).
func TestImplicitTimeout(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(`
defaults: {interval: 5s}
checks:
  - {name: a, type: tcp, target: "a:1"}
  - {name: b, type: tcp, target: "b:1", interval: 10s}
  - {name: c, type: tcp, target: "c:1", interval: 1m}
  - {name: d, type: tcp, target: "d:1", interval: 2s, timeout: 1s}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{"a": 3750 * time.Millisecond, "b": 7500 * time.Millisecond, "c": 10 * time.Second, "d": time.Second}
	for _, c := range cfg.Checks {
		if c.Timeout != want[c.Name] {
			t.Errorf("check %s: timeout %s, want %s", c.Name, c.Timeout, want[c.Name])
		}
	}
	if cfg.Defaults.Timeout != 3750*time.Millisecond {
		t.Errorf("defaults timeout %s, want 3.75s", cfg.Defaults.Timeout)
	}
}

func TestStatusPageAPIToken(t *testing.T) {
	c, err := Parse("t.yaml", []byte("statuspage: {api_token: '${TOK}'}\n"), func(k string) (string, bool) {
		return "0123456789abcdef-token", k == "TOK"
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.StatusPage.APIToken != "0123456789abcdef-token" {
		t.Fatalf("APIToken = %q", c.StatusPage.APIToken)
	}
}

func TestProbeKey(t *testing.T) {
	a := Check{Name: "api", Type: "http", URL: "http://a/", Interval: time.Minute, Group: "G"}
	b := a
	b.Group, b.Line = "Other", 7
	if a.ProbeKey() != b.ProbeKey() {
		t.Fatal("presentation changed the probe key")
	}
	b.URL = "http://b/"
	if a.ProbeKey() == b.ProbeKey() {
		t.Fatal("a different url kept the probe key")
	}
}
