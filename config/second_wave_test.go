package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"30s", 30 * time.Second},
		{"1h30m", 90 * time.Minute},
		{"7d", 7 * 24 * time.Hour},
		{"2w", 14 * 24 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"1w2d3h4m5s", (9*24+3)*time.Hour + 4*time.Minute + 5*time.Second},
		{"1.5d", 36 * time.Hour},
		{"0.1d", 144 * time.Minute},
		{"-1w", -168 * time.Hour},
		{"+2d", 48 * time.Hour},
		{"0d", 0},
		{"12h1d", 36 * time.Hour},
		{"1d500ms", 24*time.Hour + 500*time.Millisecond},
		{"15000w", 15000 * 168 * time.Hour},
	} {
		got, err := ParseDuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "d", "w", "1", "7x", "1d-2h", "1dd", "-", "1 d", "d1", "1e3d", "..d",
		"20000w", "15000w9999d", "1.2.3d", "1d2"} {
		if got, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", bad, got)
		}
	}
}

func TestDaysAndWeeksEverywhere(t *testing.T) {
	c := mustParse(t, "d.yaml", y(`
defaults:
  interval: 1d
  timeout: 1m
  flap_window: 1w
  unknown_after: 2d12h
checks:
  - {name: a, type: tcp, target: "a:1", interval: 2w, flap_window: 1d}
  - {name: b, type: push, token: 0123456789abcdef, period: 1w, grace: 1d}
notifiers:
  - {name: n, type: slack, url: "https://h.example.com", repeat: 1d, fallback: [m], fallback_after: 1d}
  - {name: m, type: slack, url: "https://m.example.com"}
routes:
  - {notify: [n], repeat: 2d}
store: {retention: {raw: 7d, minute: 30d, daily: 104w}}
`), env(nil))
	const day = 24 * time.Hour
	if c.Defaults.Interval != day || c.Defaults.FlapWindow != 7*day || c.Defaults.UnknownAfter != 60*time.Hour {
		t.Errorf("defaults %+v", c.Defaults)
	}
	if a := c.CheckByName("a"); a.Interval != 14*day || a.FlapWindow != day || a.DownInterval != 10*time.Second {
		t.Errorf("a %+v", a)
	}
	if b := c.CheckByName("b"); b.Period != 7*day || b.Grace != day {
		t.Errorf("b period %v grace %v", b.Period, b.Grace)
	}
	if n := c.NotifierByName("n"); n.Repeat != day || n.FallbackAfter != day {
		t.Errorf("n %+v", n)
	}
	if c.Routes[0].Repeat != 2*day {
		t.Errorf("route repeat %v", c.Routes[0].Repeat)
	}
	if want := (Store{7 * day, 30 * day, 728 * day}); c.Store != want {
		t.Errorf("store %+v", c.Store)
	}
}

func TestSecondWaveExample(t *testing.T) {
	data, err := os.ReadFile("testdata/second_wave.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, "second_wave.yaml", data, env(map[string]string{"PUSH_TOKEN": "tok-0123456789abcdef"}))
	if c.Defaults.DownInterval != 15*time.Second {
		t.Errorf("defaults down_interval %v", c.Defaults.DownInterval)
	}

	api := c.CheckByName("api")
	if api.DownInterval != 5*time.Second || api.Expect.CertExpiry != 14*24*time.Hour || len(api.DependsOn) != 0 ||
		api.DependsWait != 10*time.Second {
		t.Errorf("api = %+v", api)
	}
	if e := api.Expect; e.BodyNotContains != `"maintenance"` || e.BodyNotRegex == nil || e.BodyNotRegex.String() != "(?i)error" {
		t.Errorf("api expect = %+v", e)
	}
	wantJSON := []JSONAssertion{
		{Path: "$.status", Keys: []string{"status"}, Op: "==", Value: "ok"},
		{Path: "$.checks[0].latency_ms", Keys: []string{"checks", "0", "latency_ms"}, Op: "<", Value: 250.0},
		{Path: "$.version", Keys: []string{"version"}, Op: "exists", Value: true},
		{Path: "$['build.id']", Keys: []string{"build.id"}, Op: "!=", Value: "0"},
		{Path: "$.regions", Keys: []string{"regions"}, Op: "contains", Value: "eu-west"},
		{Path: "$.healthy", Keys: []string{"healthy"}, Op: "==", Value: true},
	}
	if !reflect.DeepEqual(api.Expect.JSON, wantJSON) {
		t.Errorf("json =\n%#v\nwant\n%#v", api.Expect.JSON, wantJSON)
	}
	if got := api.Expect.JSON[0].String(); got != `$.status == "ok"` {
		t.Errorf("String() = %s", got)
	}
	if got := api.Expect.JSON[1].String(); got != `$.checks[0].latency_ms < 250` {
		t.Errorf("String() = %s", got)
	}
	if got := api.Expect.JSON[2].String(); got != `$.version exists` {
		t.Errorf("String() = %s", got)
	}
	hs := api.Expect.Headers
	if len(hs) != 2 || hs[0].Name != "Content-Type" || hs[0].Regex.String() != "^application/json" ||
		hs[1].Name != "X-Request-Id" || hs[1].Regex != nil {
		t.Errorf("headers = %+v", hs)
	}

	db := c.CheckByName("db")
	if !reflect.DeepEqual(db.DependsOn, []string{"resolver"}) || db.DependsWait != 30*time.Second || db.DownInterval != 15*time.Second {
		t.Errorf("db = %+v", db)
	}
	res := c.CheckByName("resolver")
	if res.Target != "example.com" || res.Record != "A" || res.Server != "192.0.2.53:53" || res.Expect.Rcode != "NOERROR" ||
		!reflect.DeepEqual(res.Expect.Answers, []string{"192.0.2.1", "192.0.2.2"}) || res.Expect.MaxLatency != 500*time.Millisecond ||
		res.Interval != time.Minute || res.IP != "any" {
		t.Errorf("resolver = %+v", res)
	}
	if res.TargetString() != "example.com @192.0.2.53:53" || res.Host() != "192.0.2.53" {
		t.Errorf("resolver target %q host %q", res.TargetString(), res.Host())
	}
	mail := c.CheckByName("mail")
	if mail.Record != "MX" || mail.Server != "" || mail.Expect.Rcode != "NOERROR" || mail.TargetString() != "example.com." ||
		!reflect.DeepEqual(mail.Expect.Answers, []string{"10 mx1.example.com", "mx2.example.com."}) ||
		!reflect.DeepEqual(mail.DependsOn, []string{"resolver", "db"}) {
		t.Errorf("mail = %+v", mail)
	}
	backup := c.CheckByName("backup")
	if backup.Token != "0123456789abcdef0123" || backup.Period != 24*time.Hour || backup.Grace != 144*time.Minute ||
		backup.TargetString() != "/api/v1/push/backup" || backup.Host() != "" {
		t.Errorf("backup = %+v", backup)
	}
	// A push check keeps valid probe settings from the defaults, unused.
	if backup.Interval != time.Minute || backup.Timeout != 10*time.Second || backup.FailAfter != 2 {
		t.Errorf("backup probe defaults = %+v", backup)
	}
	if q := c.CheckByName("queue"); q.Token != "tok-0123456789abcdef" || q.Period != 30*time.Second || q.Grace != 20*time.Second {
		t.Errorf("queue = %+v", q)
	}

	if r := c.Routes[0]; !reflect.DeepEqual(r.GroupBy, []string{"group"}) || r.GroupWait != 30*time.Second {
		t.Errorf("route = %+v", r)
	}
	if r := c.Routes[1]; r.GroupBy != nil || r.GroupWait != 0 {
		t.Errorf("default route = %+v", r)
	}
	if c.StatusPage.Timezone != "Asia/Seoul" || c.StatusPage.Locale != "ko" || c.StatusPage.Location().String() != "Asia/Seoul" {
		t.Errorf("statuspage = %+v", c.StatusPage)
	}

	m := c.Maintenance[0]
	if !m.Recurring() || m.Every != "0 2 * * *" || m.Duration != 90*time.Minute || m.Timezone != "Europe/Berlin" ||
		!m.Start.IsZero() || m.sched == nil {
		t.Errorf("maintenance = %+v", m)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	at := func(s string) time.Time {
		tt, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	for _, tc := range []struct {
		check string
		at    time.Time
		want  bool
	}{
		{"db", at("2026-12-01 01:59"), false},
		{"db", at("2026-12-01 02:00"), true},
		{"backup", at("2026-12-01 03:29"), true},
		{"db", at("2026-12-01 03:30"), false},
		{"resolver", at("2026-12-01 02:30"), false},
		{"api", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), true},
		{"api", time.Date(2026, 12, 1, 23, 59, 0, 0, time.UTC), true},
		{"api", time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), false},
	} {
		if got := c.InMaintenance(tc.check, tc.at); got != tc.want {
			t.Errorf("InMaintenance(%s, %v) = %v, want %v", tc.check, tc.at, got, tc.want)
		}
	}
}

func TestSecondWaveDefaults(t *testing.T) {
	c := mustParse(t, "d.yaml", y(`
checks:
  - {name: a, type: tcp, target: "a:1"}
  - {name: b, type: tcp, target: "b:1", interval: 4s}
  - {name: c, type: dns, target: c.example.com}
  - {name: p, type: push, token: 0123456789abcdef, period: 30s}
  - {name: q, type: push, token: 0123456789abcdef, period: 2h}
statuspage: {}
`), env(nil))
	if c.Defaults.DownInterval != 10*time.Second {
		t.Errorf("defaults down_interval %v", c.Defaults.DownInterval)
	}
	for name, want := range map[string]time.Duration{"a": 10 * time.Second, "b": 4 * time.Second, "c": 10 * time.Second} {
		if got := c.CheckByName(name).DownInterval; got != want {
			t.Errorf("%s: down_interval %v, want %v", name, got, want)
		}
	}
	if ck := c.CheckByName("c"); ck.Record != "A" || ck.Server != "" || ck.Expect.Rcode != "NOERROR" || ck.Expect.Answers != nil ||
		ck.Expect.Status != nil || ck.DependsWait != 10*time.Second {
		t.Errorf("c = %+v", ck)
	}
	if p := c.CheckByName("p"); p.Grace != 5*time.Second {
		t.Errorf("p grace %v, want the 5s floor", p.Grace)
	}
	if q := c.CheckByName("q"); q.Grace != 12*time.Minute {
		t.Errorf("q grace %v, want period/10", q.Grace)
	}
	if c.StatusPage.Timezone != "UTC" || c.StatusPage.Locale != "en" || c.StatusPage.Location() != time.UTC {
		t.Errorf("statuspage %+v", c.StatusPage)
	}
	if (StatusPage{}).Location() != time.UTC {
		t.Error("zero StatusPage location")
	}
	// A defaults down_interval shorter than every interval.
	c = mustParse(t, "d.yaml", y(`
defaults: {interval: 5s, down_interval: 2s}
checks:
  - {name: a, type: tcp, target: "a:1"}
  - {name: b, type: tcp, target: "b:1", interval: 3s}
  - {name: c, type: tcp, target: "c:1", interval: 3s, down_interval: 3s}
`), env(nil))
	for name, want := range map[string]time.Duration{"a": 2 * time.Second, "b": 2 * time.Second, "c": 3 * time.Second} {
		if got := c.CheckByName(name).DownInterval; got != want {
			t.Errorf("%s: down_interval %v, want %v", name, got, want)
		}
	}
}

func TestSecondWaveErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"durations keep positions", `
defaults: {interval: 1x, flap_window: 1d-1h}
checks: [{name: a, type: tcp, target: "a:1", unknown_after: "7 d"}]
`, []string{
			`t.yaml:1:22: interval must be a duration such as 30s, 2m, 1h or 7d, got "1x"`,
			`t.yaml:1:39: flap_window must be a duration such as 30s, 2m, 1h or 7d, got "1d-1h"`,
			`t.yaml:2:61: unknown_after must be a duration such as 30s, 2m, 1h or 7d, got "7 d"`}},
		{"down_interval", `
defaults:
  interval: 20s
  down_interval: 30s
checks:
  - {name: a, type: tcp, target: "a:1", down_interval: 500ms}
  - {name: b, type: tcp, target: "b:1", down_interval: 21s}
  - {name: c, type: tcp, target: "c:1", down_interval: soon}
`, []string{
			"t.yaml:3:3: down_interval 30s must not be longer than interval 20s",
			"t.yaml:5:41: down_interval must be at least 1s, got 500ms",
			"t.yaml:6:41: down_interval 21s must not be longer than interval 20s",
			`t.yaml:7:56: down_interval must be a duration such as 30s, 2m, 1h or 7d, got "soon"`}},
		{"defaults down_interval longer than a check's interval", `
defaults: {down_interval: 8s}
checks:
  - {name: a, type: tcp, target: "a:1", interval: 5s, timeout: 1s}
  - {name: b, type: tcp, target: "b:1", interval: 8s, timeout: 1s}
`, []string{`t.yaml:1:12: down_interval 8s must not be longer than interval 5s of check "a"`}},
		{"depends_on", `
checks:
  - {name: a, type: tcp, target: "a:1", depends_on: [ghost, b, b, ""], depends_wait: -1s}
  - {name: b, type: tcp, target: "b:1", depends_on: []}
  - {name: c, type: tcp, target: "c:1", depends_on: b}
`, []string{
			`t.yaml:2:54: unknown check "ghost" in depends_on`,
			`t.yaml:2:64: check "b" is listed twice in depends_on`,
			"t.yaml:2:67: depends_on entries must be check names, got an empty value",
			"t.yaml:2:72: depends_wait must not be negative, got -1s",
			"t.yaml:3:41: depends_on must list at least one check",
			`t.yaml:4:53: depends_on must be a list, got "b"`}},
		{"depends_on cycles", `
checks:
  - name: a
    type: tcp
    target: a:1
    depends_on: [b]
  - name: b
    type: tcp
    target: b:1
    depends_on: [c]
  - name: c
    type: tcp
    target: c:1
    depends_on: [a]
  - name: self
    type: tcp
    target: d:1
    depends_on: [self]
  - name: e
    type: tcp
    target: e:1
    depends_on: [a, f]
  - name: f
    type: tcp
    target: f:1
    depends_on: [e]
`, []string{
			"t.yaml:13:5: depends_on cycle: a -> b -> c -> a",
			"t.yaml:17:5: depends_on cycle: self -> self",
			"t.yaml:25:5: depends_on cycle: e -> f -> e"}},
		{"dns", `
checks:
  - {name: a, type: dns}
  - {name: b, type: dns, target: 192.0.2.1}
  - {name: c, type: dns, target: "bad name", record: PTR, server: "ns:x"}
  - {name: d, type: dns, target: d.example.com, server: ""}
  - {name: e, type: dns, target: e.example.com, server: "a b"}
  - name: f
    type: dns
    target: f.example.com
    url: http://f
    expect: {rcode: OK, body_contains: x, status: [200]}
`, []string{
			`t.yaml:2:5: dns check "a" needs a target (a domain name)`,
			"t.yaml:3:26: target must be a domain name, not an IP address",
			`t.yaml:4:26: target has an invalid name "bad name"`,
			`t.yaml:4:46: record must be A, AAAA, CNAME, MX, TXT, NS or SOA, got "PTR"`,
			`t.yaml:4:59: server has an invalid port "x" (want 1-65535)`,
			"t.yaml:5:49: server must not be empty (leave it out for the system resolver)",
			"t.yaml:6:49: server must be HOST:PORT or an IP address",
			`t.yaml:10:5: key "url" does not apply to dns checks (it is for http checks)`,
			`t.yaml:11:14: rcode must be NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, YXDOMAIN, YXRRSET, NXRRSET, NOTAUTH or NOTZONE, got "OK"`,
			`t.yaml:11:25: key "body_contains" in expect does not apply to dns checks (it is for http or tcp checks)`,
			`t.yaml:11:43: key "status" in expect does not apply to dns checks (it is for http checks)`}},
		{"dns answers", `
checks:
  - {name: a, type: dns, target: a.example.com, expect: {answers: [192.0.2.1, "2001:db8::1", x]}}
  - {name: b, type: dns, target: b.example.com, record: AAAA, expect: {answers: ["2001:db8::1", 192.0.2.1]}}
  - {name: c, type: dns, target: c.example.com, record: MX, expect: {answers: ["10 mx.example.com", "x 1", "1 2 3", ""]}}
  - {name: d, type: dns, target: d.example.com, record: CNAME, expect: {answers: ["not a name"]}}
  - {name: e, type: dns, target: e.example.com, record: TXT, expect: {answers: ["v=spf1 -all"]}}
`, []string{
			`t.yaml:2:79: answer "2001:db8::1" must be an IPv4 address for an A record`,
			`t.yaml:2:94: answer "x" must be an IP address for an A record`,
			`t.yaml:3:97: answer "192.0.2.1" must be an IPv6 address for an AAAA record`,
			`t.yaml:4:101: answer "x 1" must be HOST or "PREFERENCE HOST" for an MX record`,
			`t.yaml:4:108: answer "1 2 3" must be HOST or "PREFERENCE HOST" for an MX record`,
			`t.yaml:4:117: answer "" must not be empty`,
			`t.yaml:5:83: answer "not a name" must be a domain name for a CNAME record`}},
		{"push", `
checks:
  - {name: a, type: push}
  - {name: b, type: push, token: short, period: 500ms, grace: 1s}
  - {name: c, type: push, token: "0123456789 abcdef", period: 1h}
  - name: d
    type: push
    token: 0123456789abcdef
    period: 1h
    interval: 10s
    timeout: 1s
    down_interval: 5s
    target: x
    expect: {max_latency: 1s}
    ip: 4
`, []string{
			`t.yaml:2:5: push check "a" needs a token (at least 16 characters)`,
			`t.yaml:2:5: push check "a" needs a period (how often the job runs, such as 5m or 1d)`,
			"t.yaml:3:27: token must be at least 16 characters, got 5",
			"t.yaml:3:41: period must be at least 1s, got 500ms",
			"t.yaml:3:56: grace must be at least 5s, got 1s",
			"t.yaml:4:27: token must not contain spaces or control characters",
			`t.yaml:9:5: key "interval" does not apply to push checks (it is for http, tcp, icmp or dns checks)`,
			`t.yaml:10:5: key "timeout" does not apply to push checks (it is for http, tcp, icmp or dns checks)`,
			`t.yaml:11:5: key "down_interval" does not apply to push checks (it is for http, tcp, icmp or dns checks)`,
			`t.yaml:12:5: key "target" does not apply to push checks (it is for tcp, icmp or dns checks)`,
			`t.yaml:13:5: key "expect" does not apply to push checks (it is for http, tcp, icmp or dns checks)`,
			`t.yaml:14:5: key "ip" does not apply to push checks (it is for http, tcp, icmp or dns checks)`}},
		{"http assertions", `
checks:
  - name: a
    type: http
    url: http://a
    expect:
      body_not_regex: "a(b"
      headers: {"bad name": x, Content-Type: "(", content-type: y, X-A: [1]}
      json:
        - {path: $.a, op: "=", value: 1}
        - {op: "==", value: 1}
        - {path: "$.a[x]", op: "==", value: 1}
        - {path: $.a, op: "<", value: ten}
        - {path: $.a, op: "=="}
        - {path: $.a, op: exists, value: maybe}
        - {path: $.a, op: contains, value: {a: 1}}
        - {path: "a..b", value: 1}
        - {path: $.a, value: 1, extra: 2}
        - x
  - {name: b, type: http, url: "http://b", expect: {json: []}}
  - {name: c, type: tcp, target: "c:1", expect: {json: [], headers: {}, body_not_contains: x}}
`, []string{
			`t.yaml:6:7: body_not_regex "a(b" does not compile: missing closing )`,
			`t.yaml:7:17: header name "bad name" is not valid`,
			`t.yaml:7:32: header "Content-Type" pattern "(" does not compile: missing closing )`,
			`t.yaml:7:51: header "Content-Type" is listed twice`,
			`t.yaml:7:73: header "X-A" pattern must be a string, got a list`,
			`t.yaml:9:23: op must be ==, !=, <, <=, >, >=, exists or contains, got "="`,
			"t.yaml:10:11: json assertion needs a path such as $.status",
			`t.yaml:11:12: path "$.a[x]" has an invalid index [x] (want [0], [1], ... or ['name'])`,
			`t.yaml:12:39: value must be a number for <, got "ten"`,
			"t.yaml:13:23: json assertion with op == needs a value",
			`t.yaml:14:42: value must be true or false, got "maybe"`,
			"t.yaml:15:44: value must be a string, number or boolean, got a mapping",
			`t.yaml:16:12: path "a..b" has an empty member name (write ['name'] for unusual names)`,
			`t.yaml:17:33: unknown key "extra" in json assertion`,
			`t.yaml:18:11: json assertion must be a mapping, got "x"`,
			"t.yaml:19:53: json must list at least one assertion",
			`t.yaml:20:50: key "json" in expect does not apply to tcp checks (it is for http checks)`,
			`t.yaml:20:60: key "headers" in expect does not apply to tcp checks (it is for http checks)`,
			`t.yaml:20:73: key "body_not_contains" in expect does not apply to tcp checks (it is for http checks)`}},
		{"recurring maintenance", `
checks: [{name: a, type: tcp, target: "a:1"}]
maintenance:
  - {checks: [a], every: "0 2 * *", duration: 1h}
  - {checks: [a], every: "@every 1h", duration: 1h}
  - {checks: [a], every: "CRON_TZ=UTC 0 2 * * *", duration: 1h}
  - {checks: [a], every: "0 0 30 2 *", duration: 1h}
  - {checks: [a], every: "0 2 * * *"}
  - {checks: [a], every: "0 2 * * *", duration: 0s, timezone: Mars/Olympus}
  - {checks: [a], every: "0 2 * * *", duration: 1h, start: 2026-12-01T02:00:00Z, timezone: Local}
  - {checks: [a], start: 2026-12-01T02:00:00Z, end: 2026-12-01T03:00:00Z, duration: 1h, timezone: UTC}
  - {checks: [a], every: "61 2 * * *", duration: 1h}
`, []string{
			`t.yaml:3:19: every "0 2 * *" is not valid: expected exactly 5 fields, found 4: [0 2 * *] (want 5 cron fields: minute hour day-of-month month day-of-week, such as "0 2 * * 0")`,
			`t.yaml:4:19: every "@every 1h" must be a cron expression such as "0 2 * * 0"; @every is not supported (want 5 cron fields: minute hour day-of-month month day-of-week, such as "0 2 * * 0")`,
			`t.yaml:5:19: every "CRON_TZ=UTC 0 2 * * *" must not name a time zone: use the timezone key (want 5 cron fields: minute hour day-of-month month day-of-week, such as "0 2 * * 0")`,
			`t.yaml:6:19: every "0 0 30 2 *" never happens (want 5 cron fields: minute hour day-of-month month day-of-week, such as "0 2 * * 0")`,
			"t.yaml:7:5: a recurring maintenance window needs duration (how long each occurrence lasts, such as 2h)",
			"t.yaml:8:39: duration must be positive, got 0s",
			`t.yaml:8:53: timezone "Mars/Olympus" is not an IANA time zone name such as Europe/Berlin`,
			"t.yaml:9:53: start does not go with every: a recurring window has every and duration, a one-off window start and end",
			`t.yaml:9:82: timezone "Local" is not an IANA time zone name such as Europe/Berlin`,
			"t.yaml:10:75: duration applies to a recurring window (with every); a one-off window has start and end",
			"t.yaml:10:89: timezone applies to a recurring window (with every); a one-off window has start and end",
			`t.yaml:11:19: every "61 2 * * *" is not valid: end of range (61) above maximum (59): 61 (want 5 cron fields: minute hour day-of-month month day-of-week, such as "0 2 * * 0")`}},
		{"routes grouping", `
notifiers: [{name: n, type: slack, url: "https://h.example.com"}]
routes:
  - {match: {severity: critical}, notify: [n], group_by: [group, group, region], group_wait: -1s}
  - {match: {severity: warning}, notify: [n], group_wait: 30s}
  - {match: {severity: info}, notify: [n], group_by: []}
  - {notify: [n], group_by: group}
`, []string{
			`t.yaml:3:66: "group" is listed twice in group_by`,
			`t.yaml:3:73: group_by entries must be group, got "region"`,
			"t.yaml:3:82: group_wait must not be negative, got -1s",
			"t.yaml:4:47: group_wait needs group_by (such as group_by: [group])",
			"t.yaml:5:44: group_by must list at least one of group",
			`t.yaml:6:29: group_by must be a list, got "group"`}},
		{"statuspage zone and locale", "statuspage: {timezone: Europe/Nowhere, locale: fr}\n", []string{
			`t.yaml:1:14: timezone "Europe/Nowhere" is not an IANA time zone name such as Europe/Berlin`,
			`t.yaml:1:40: locale must be en or ko, got "fr"`}},
		{"statuspage local zone", "statuspage: {timezone: Local}\n", []string{
			`t.yaml:1:14: timezone "Local" is not an IANA time zone name such as Europe/Berlin`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", y(tc.doc), env(nil))
			checkErrors(t, err, tc.want)
		})
	}
}

func TestParseJSONPath(t *testing.T) {
	for in, want := range map[string][]string{
		"$":                   {},
		"$.a":                 {"a"},
		"a":                   {"a"},
		"a.b[2].c":            {"a", "b", "2", "c"},
		"$.a.b[10]":           {"a", "b", "10"},
		"$[0]":                {"0"},
		"[0][1]":              {"0", "1"},
		`$['a.b']["c d"].e`:   {"a.b", "c d", "e"},
		"$.a-b.c_d.$x":        {"a-b", "c_d", "$x"},
		" $.spaces.around ":   {"spaces", "around"},
		"$.ünïcode[007]":      {"ünïcode", "7"},
		`$['it''s']`:          nil, // not supported: reported
		"$.a[":                nil,
		"$.a[-1]":             nil,
		"$..a":                nil,
		"$.a['b]":             nil,
		"":                    nil,
		"$a":                  nil,
		"$.a b":               nil,
		"$.a[99999999999999]": nil,
		"$.a[0]x":             nil,
		"$.a.":                nil,
		"$.*":                 {"*"},
		"$['']":               {""},
		"$.a[1]['b'][2]":      {"a", "1", "b", "2"},
		`$["q'uote"]`:         {"q'uote"},
		"$.a\t":               {"a"},
		"$.x.y.z.w.v.u.t.s.r": {"x", "y", "z", "w", "v", "u", "t", "s", "r"},
	} {
		got, err := ParseJSONPath(in)
		if want == nil {
			if err == nil {
				t.Errorf("ParseJSONPath(%q) = %q, want an error", in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseJSONPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestFormatJSONValue(t *testing.T) {
	for v, want := range map[any]string{"ok": `"ok"`, 3.0: "3", 0.25: "0.25", true: "true", 1e21: "1e+21"} {
		if got := FormatJSONValue(v); got != want {
			t.Errorf("FormatJSONValue(%v) = %s, want %s", v, got, want)
		}
	}
	if FormatJSONValue(nil) != "null" {
		t.Error("nil")
	}
	a := JSONAssertion{Path: "$.gone", Op: OpExists, Value: false}
	if a.String() != "$.gone does not exist" {
		t.Errorf("String() = %s", a.String())
	}
}

func TestSameWithNewKeys(t *testing.T) {
	parse := func(doc string) *Check {
		t.Helper()
		return &mustParse(t, "s.yaml", []byte(doc), env(nil)).Checks[0]
	}
	const base = `checks: [{name: a, type: http, url: "http://a", expect: {body_not_regex: x, headers: {A: "^b"}}}]` + "\n"
	a, b := parse(base), parse(base)
	if !a.Same(b) || !a.SameProbe(b) {
		t.Error("identical definitions differ")
	}
	c := parse(strings.Replace(base, `"^b"`, `"^c"`, 1))
	if a.SameProbe(c) {
		t.Error("a different header pattern probes the same")
	}
	d := parse(strings.Replace(base, "body_not_regex: x", "body_not_regex: y", 1))
	if a.SameProbe(d) {
		t.Error("a different body_not_regex probes the same")
	}
	const deps = `checks: [{name: a, type: tcp, target: "a:1"%s}, {name: b, type: tcp, target: "b:1"}]` + "\n"
	e, f := parse(strings.Replace(deps, "%s", "", 1)), parse(strings.Replace(deps, "%s", ", depends_on: [b], depends_wait: 1m", 1))
	if e.Same(f) || !e.SameProbe(f) {
		t.Error("depends_on is routing: not the same check, the same probe")
	}
	g := parse(strings.Replace(deps, "%s", ", down_interval: 2s", 1))
	if e.SameProbe(g) {
		t.Error("down_interval changes the probing")
	}
}

func TestRecurringMaintenanceBuiltByHand(t *testing.T) {
	w, err := NewRecurringMaintenance("nightly", []string{"a"}, " 0 3 * * 1-5 ", time.Hour, "America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	mon := time.Date(2026, 12, 7, 3, 30, 0, 0, ny) // a Monday
	sat := time.Date(2026, 12, 5, 3, 30, 0, 0, ny)
	if !w.Contains(mon) || w.Contains(sat) || w.Every != "0 3 * * 1-5" {
		t.Errorf("Contains: monday %v saturday %v", w.Contains(mon), w.Contains(sat))
	}
	// Without the parsed schedule (a literal, or one decoded from JSON) it
	// is parsed on use.
	lit := Maintenance{Checks: []string{"a"}, Every: "0 3 * * 1-5", Duration: time.Hour, Timezone: "America/New_York"}
	if !lit.Contains(mon) || lit.Contains(sat) {
		t.Error("literal window")
	}
	s, e, ok := lit.Next(sat)
	if !ok || !s.Equal(time.Date(2026, 12, 7, 3, 0, 0, 0, ny)) || !e.Equal(s.Add(time.Hour)) {
		t.Errorf("Next = %v %v %v", s, e, ok)
	}
	for _, bad := range []Maintenance{
		{Every: "nonsense", Duration: time.Hour},
		{Every: "0 3 * * *", Duration: 0},
		{Every: "0 3 * * *", Duration: time.Hour, Timezone: "Nowhere/Land"},
	} {
		if bad.Contains(mon) {
			t.Errorf("%+v contains", bad)
		}
		if _, _, ok := bad.Next(mon); ok {
			t.Errorf("%+v has a next occurrence", bad)
		}
	}
	for _, args := range []struct {
		every string
		d     time.Duration
		tz    string
	}{{"@every 1h", time.Hour, ""}, {"0 3 * * *", -time.Hour, ""}, {"0 3 * * *", time.Hour, "Local"}} {
		if _, err := NewRecurringMaintenance("", nil, args.every, args.d, args.tz); err == nil {
			t.Errorf("NewRecurringMaintenance(%q, %v, %q) accepted", args.every, args.d, args.tz)
		}
	}
}

// occ is a window's occurrence as local times in loc, for tables.
type occ struct{ start, end string }

func (w Maintenance) occurrenceIn(t time.Time, loc *time.Location) (occ, bool) {
	s, e, ok := w.Occurrence(t)
	if !ok {
		return occ{}, false
	}
	const f = "2006-01-02 15:04 MST"
	return occ{s.In(loc).Format(f), e.In(loc).Format(f)}, true
}

func TestRecurringMaintenanceDST(t *testing.T) {
	berlin, err := LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	win := func(every string, d time.Duration) Maintenance {
		w, err := NewRecurringMaintenance("", []string{"a"}, every, d, "Europe/Berlin")
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	utc := func(s string) time.Time {
		tt, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	for _, tc := range []struct {
		name   string
		w      Maintenance
		at     string // UTC
		want   occ    // zero: not inside
		inside bool
	}{
		// 2026-03-29: clocks jump from 02:00 CET to 03:00 CEST (01:00 UTC).
		{"before the jump", win("0 1 * * *", 2*time.Hour), "2026-03-28T23:59:00Z", occ{}, false},
		{"spring: starts 01:00 CET", win("0 1 * * *", 2*time.Hour), "2026-03-29T00:00:00Z",
			occ{"2026-03-29 01:00 CET", "2026-03-29 04:00 CEST"}, true},
		{"spring: 2h of elapsed time", win("0 1 * * *", 2*time.Hour), "2026-03-29T01:59:59Z",
			occ{"2026-03-29 01:00 CET", "2026-03-29 04:00 CEST"}, true},
		{"spring: over at 04:00 CEST", win("0 1 * * *", 2*time.Hour), "2026-03-29T02:00:00Z", occ{}, false},
		{"spring: a skipped time starts at the jump", win("30 2 * * *", time.Hour), "2026-03-29T01:00:00Z",
			occ{"2026-03-29 03:00 CEST", "2026-03-29 04:00 CEST"}, true},
		{"spring: not before the jump", win("30 2 * * *", time.Hour), "2026-03-29T00:59:59Z", occ{}, false},
		{"spring: next day as usual", win("30 2 * * *", time.Hour), "2026-03-30T00:30:00Z",
			occ{"2026-03-30 02:30 CEST", "2026-03-30 03:30 CEST"}, true},
		{"summer: 02:00 CEST is 00:00 UTC", win("0 2 * * *", time.Hour), "2026-07-01T00:10:00Z",
			occ{"2026-07-01 02:00 CEST", "2026-07-01 03:00 CEST"}, true},
		{"winter: 02:00 CET is 01:00 UTC", win("0 2 * * *", time.Hour), "2026-12-01T00:10:00Z", occ{}, false},
		// 2026-10-25: clocks fall back from 03:00 CEST to 02:00 CET (01:00 UTC).
		{"autumn: a repeated time starts once, the first time", win("30 2 * * *", time.Hour), "2026-10-25T00:30:00Z",
			occ{"2026-10-25 02:30 CEST", "2026-10-25 02:30 CET"}, true},
		{"autumn: ends after an hour, during the repeat", win("30 2 * * *", time.Hour), "2026-10-25T01:29:59Z",
			occ{"2026-10-25 02:30 CEST", "2026-10-25 02:30 CET"}, true},
		{"autumn: the second 02:30 starts nothing", win("30 2 * * *", time.Hour), "2026-10-25T01:30:00Z", occ{}, false},
		{"autumn: 02:10 CET, inside the window begun at 02:00 CEST", win("0 2 * * *", 90*time.Minute), "2026-10-25T01:10:00Z",
			occ{"2026-10-25 02:00 CEST", "2026-10-25 02:30 CET"}, true},
		{"autumn: 01:00 CEST to 03:00 CET is 3h elapsed; 2h ends at 02:00 CET", win("0 1 * * *", 2*time.Hour), "2026-10-25T00:59:00Z",
			occ{"2026-10-25 01:00 CEST", "2026-10-25 02:00 CET"}, true},
		{"autumn: over", win("0 1 * * *", 2*time.Hour), "2026-10-25T01:00:00Z", occ{}, false},
		// Month ends.
		{"31st: fires in December", win("0 22 31 * *", 4*time.Hour), "2026-12-31T22:00:00Z",
			occ{"2026-12-31 22:00 CET", "2027-01-01 02:00 CET"}, true},
		{"31st: runs past the year's end", win("0 22 31 * *", 4*time.Hour), "2027-01-01T00:59:59Z",
			occ{"2026-12-31 22:00 CET", "2027-01-01 02:00 CET"}, true},
		{"31st: not in November", win("0 22 31 * *", 4*time.Hour), "2026-11-30T22:00:00Z", occ{}, false},
		{"last days: February 28", win("0 23 28-31 * *", 2*time.Hour), "2027-02-28T23:30:00Z",
			occ{"2027-02-28 23:00 CET", "2027-03-01 01:00 CET"}, true},
		{"last days: into March 1st", win("0 23 28-31 * *", 2*time.Hour), "2027-02-28T23:59:00Z",
			occ{"2027-02-28 23:00 CET", "2027-03-01 01:00 CET"}, true},
		{"leap day", win("0 12 29 2 *", time.Hour), "2028-02-29T11:30:00Z",
			occ{"2028-02-29 12:00 CET", "2028-02-29 13:00 CET"}, true},
		{"first of the month", win("@monthly", 30*time.Minute), "2026-04-30T22:10:00Z",
			occ{"2026-05-01 00:00 CEST", "2026-05-01 00:30 CEST"}, true},
		// Long and overlapping windows.
		{"weekly, a day long", win("0 20 * * 5", 48*time.Hour), "2026-12-06T18:00:00Z",
			occ{"2026-12-04 20:00 CET", "2026-12-06 20:00 CET"}, true},
		{"overlapping: the one that ends last", win("*/10 * * * *", 25*time.Minute), "2026-12-01T12:34:00Z",
			occ{"2026-12-01 13:30 CET", "2026-12-01 13:55 CET"}, true},
		{"every minute", win("* * * * *", time.Second), "2026-12-01T12:34:00.5Z",
			occ{"2026-12-01 13:34 CET", "2026-12-01 13:34 CET"}, true},
		{"every minute, between", win("* * * * *", time.Second), "2026-12-01T12:34:01Z", occ{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := utc(tc.at)
			got, ok := tc.w.occurrenceIn(at, berlin)
			if ok != tc.inside || got != tc.want {
				t.Errorf("Occurrence(%s) = %v %v, want %v %v", tc.at, got, ok, tc.want, tc.inside)
			}
			if tc.w.Contains(at) != tc.inside {
				t.Errorf("Contains(%s) = %v", tc.at, !tc.inside)
			}
		})
	}
}

func TestRecurringMaintenanceNext(t *testing.T) {
	berlin, _ := LoadLocation("Europe/Berlin")
	const f = "2006-01-02 15:04 MST"
	for _, tc := range []struct {
		every string
		at    string // RFC 3339
		want  string // start, Berlin time
	}{
		{"30 2 * * *", "2026-03-28T12:00:00Z", "2026-03-29 03:00 CEST"}, // skipped: at the jump
		{"30 2 * * *", "2026-03-29T01:00:00Z", "2026-03-30 02:30 CEST"}, // strictly after
		{"30 2 * * *", "2026-10-24T12:00:00Z", "2026-10-25 02:30 CEST"},
		{"30 2 * * *", "2026-10-25T00:30:00Z", "2026-10-26 02:30 CET"}, // the repeat is not a second start
		{"30 2 * * *", "2026-10-25T01:15:00Z", "2026-10-26 02:30 CET"},
		{"0 2 31 * *", "2026-10-31T02:00:00+01:00", "2026-12-31 02:00 CET"},
		{"0 0 1 * *", "2026-01-31T23:59:00+01:00", "2026-02-01 00:00 CET"},
		{"0 12 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29 12:00 CET"},
	} {
		w, err := NewRecurringMaintenance("", []string{"a"}, tc.every, time.Hour, "Europe/Berlin")
		if err != nil {
			t.Fatal(err)
		}
		at, _ := time.Parse(time.RFC3339, tc.at)
		s, e, ok := w.Next(at)
		if !ok || s.In(berlin).Format(f) != tc.want || e.Sub(s) != time.Hour {
			t.Errorf("%q Next(%s) = %s %v %v, want %s", tc.every, tc.at, s.In(berlin).Format(f), e, ok, tc.want)
		}
	}
	one := Maintenance{Start: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)}
	if s, e, ok := one.Next(one.Start.Add(-time.Minute)); !ok || !s.Equal(one.Start) || !e.Equal(one.End) {
		t.Error("one-off Next before its start")
	}
	if _, _, ok := one.Next(one.Start); ok {
		t.Error("one-off Next once started")
	}
	if s, e, ok := one.Occurrence(one.Start); !ok || !s.Equal(one.Start) || !e.Equal(one.End) || one.Recurring() {
		t.Error("one-off Occurrence")
	}
	if _, _, ok := one.Occurrence(one.End); ok {
		t.Error("one-off Occurrence at its end")
	}
}

// TestRecurringMaintenanceAgainstBruteForce compares Occurrence with a
// walk over every minute for a year in a few zones: a window contains t
// exactly when an occurrence started in (t - duration, t], where an
// occurrence is each local time the expression names, once, skipped times
// moved to the jump.
func TestRecurringMaintenanceAgainstBruteForce(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	for _, tc := range []struct {
		every, zone string
		d           time.Duration
	}{
		{"30 2 * * *", "Europe/Berlin", 90 * time.Minute},
		{"0 1,2 * * 0", "America/New_York", 45 * time.Minute},
		{"15 */6 28-31 * *", "Australia/Lord_Howe", 7 * time.Hour},
	} {
		w, err := NewRecurringMaintenance("", []string{"a"}, tc.every, tc.d, tc.zone)
		if err != nil {
			t.Fatal(err)
		}
		loc, _ := LoadLocation(tc.zone)
		// The starts, from the local calendar.
		var starts []time.Time
		from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		to := from.AddDate(1, 0, 0)
		for wall := from.Add(-24 * time.Hour); wall.Before(to); wall = w.sched.Next(wall) {
			if !wall.Before(from.Add(-24 * time.Hour)) {
				starts = append(starts, realStart(wall, loc))
			}
		}
		i := 0
		for at := from; at.Before(to); at = at.Add(7 * time.Minute) {
			for i+1 < len(starts) && !starts[i+1].After(at) {
				i++
			}
			inside := false
			for j := i; j >= 0 && j > i-3; j-- {
				if !starts[j].After(at) && at.Before(starts[j].Add(tc.d)) {
					inside = true
				}
			}
			if got := w.Contains(at); got != inside {
				t.Fatalf("%s in %s: Contains(%s) = %v, want %v", tc.every, tc.zone, at.In(loc), got, inside)
			}
		}
	}
}

// TestDocumentationExample parses the complete example of
// docs/configuration.md, so that the reference never shows a file Vantage
// refuses.
func TestDocumentationExample(t *testing.T) {
	b, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Skip("docs not found:", err)
	}
	s := string(b)
	i := strings.Index(s, "## A complete example")
	if i < 0 {
		t.Fatal("no complete example in docs/configuration.md")
	}
	s = s[i:]
	s = s[strings.Index(s, "```yaml\n")+len("```yaml\n"):]
	s = s[:strings.Index(s, "```")]
	c := mustParse(t, "configuration.md", []byte(s), env(map[string]string{"API_TOKEN": "t", "PAGERDUTY_KEY": "k",
		"SLACK_WEBHOOK_URL": "https://hooks.example.com/x", "BACKUP_PUSH_TOKEN": "0123456789abcdef"}))
	if c.CheckByName("resolver") == nil || c.CheckByName("nightly-backup") == nil || len(c.Maintenance) != 2 {
		t.Errorf("example parsed to %+v", c)
	}
}

// TestTargetStringHidesURLPassword: a password in an http check's URL is
// not shown where the target is (pages, the operators' status).
func TestTargetStringHidesURLPassword(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"https://probe:s3cret@api.example.com/health", "https://probe:xxxxx@api.example.com/health"},
		{"https://probe@api.example.com/health", "https://probe@api.example.com/health"},
		{"https://api.example.com/health?x=1", "https://api.example.com/health?x=1"},
	} {
		c := &Check{Type: TypeHTTP, URL: tc.url}
		if got := c.TargetString(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.url, got, tc.want)
		}
	}
}
