package config

import (
	"reflect"
	"testing"
	"time"
)

const routeNotifiers = `
notifiers:
  - {name: pager, type: pagerduty, routing_key: k, repeat: 2h, rate_limit: 60/m}
  - {name: chat, type: slack, url: "https://hooks.example.com/x", rate_limit: none}
  - {name: hook, type: webhook, url: "https://ops.example.com/", rate_limit: 10/30s}
`

func TestRoutesParse(t *testing.T) {
	c := mustParse(t, "r.yaml", y(`
defaults:
  flap_threshold: 3
  flap_window: 5m
  unknown_after: 20m
checks:
  - {name: api, type: tcp, target: "a:1", severity: critical, labels: {team: web}}
  - {name: db, type: tcp, target: "b:1", flap_threshold: 0, flap_window: 1m, unknown_after: 0s}
routes:
  - match: {severity: critical}
    notify: [pager]
    repeat: 1h
  - match: {labels: {team: web}, group: Public}
    notify: [chat, hook]
    continue: true
  - match: {severity: warning}
    notify: [chat]
    repeat: 0s
  - notify: [chat]
coverage:
  notify: [chat]
`+routeNotifiers), env(nil))
	want := []Route{
		{Match: RouteMatch{Severity: "critical"}, Notify: []string{"pager"}, Repeat: time.Hour, RepeatSet: true, Line: 9, Column: 5},
		{Match: RouteMatch{Group: "Public", Labels: map[string]string{"team": "web"}}, Notify: []string{"chat", "hook"},
			Continue: true, Line: 12, Column: 5},
		{Match: RouteMatch{Severity: "warning"}, Notify: []string{"chat"}, RepeatSet: true, Line: 15, Column: 5},
		{Notify: []string{"chat"}, Line: 18, Column: 5},
	}
	if !reflect.DeepEqual(c.Routes, want) {
		t.Errorf("Routes =\n%+v\nwant\n%+v", c.Routes, want)
	}
	if !c.Routes[3].Match.IsDefault() || c.Routes[0].Match.IsDefault() {
		t.Error("IsDefault")
	}
	if !reflect.DeepEqual(c.Coverage, Coverage{Notify: []string{"chat"}}) {
		t.Errorf("Coverage = %+v", c.Coverage)
	}
	if d := c.Defaults; d.FlapThreshold != 3 || d.FlapWindow != 5*time.Minute || d.UnknownAfter != 20*time.Minute {
		t.Errorf("Defaults = %+v", d)
	}
	if a := c.CheckByName("api"); a.FlapThreshold != 3 || a.FlapWindow != 5*time.Minute || a.UnknownAfter != 20*time.Minute {
		t.Errorf("api inherits the defaults: %+v", a)
	}
	if b := c.CheckByName("db"); b.FlapThreshold != 0 || b.FlapWindow != time.Minute || b.UnknownAfter != 0 {
		t.Errorf("db overrides them: %+v", b)
	}
	pager, chat, hook := c.NotifierByName("pager"), c.NotifierByName("chat"), c.NotifierByName("hook")
	if pager.Repeat != 2*time.Hour || *pager.RateLimit != (RateLimit{60, time.Minute}) {
		t.Errorf("pager = %+v", pager)
	}
	if chat.Repeat != 0 || *chat.RateLimit != (RateLimit{}) {
		t.Errorf("chat = %+v", chat)
	}
	if *hook.RateLimit != (RateLimit{10, 30 * time.Second}) {
		t.Errorf("hook = %+v", hook)
	}
}

func TestRoutesDefaultsWhenAbsent(t *testing.T) {
	c := mustParse(t, "r.yaml", y(`
checks:
  - {name: api, type: tcp, target: "a:1"}
notifiers:
  - {name: chat, type: slack, url: "https://hooks.example.com/x"}
`), env(nil))
	if c.Routes != nil || c.Coverage.Notify != nil {
		t.Errorf("routes %+v coverage %+v", c.Routes, c.Coverage)
	}
	if n := c.NotifierByName("chat"); n.RateLimit != nil || n.Repeat != 0 {
		t.Errorf("chat = %+v", n)
	}
	if a := c.CheckByName("api"); a.FlapThreshold != DefaultFlapThreshold || a.FlapWindow != DefaultFlapWindow ||
		a.UnknownAfter != DefaultUnknownAfter {
		t.Errorf("api = %+v", a)
	}
}

func TestRoutesErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"unknown notifier", `
routes:
  - match: {severity: critical}
    notify: [pager, nope]
`, []string{`t.yaml:3:21: unknown notifier "nope"`}},
		{"default route not last", `
routes:
  - notify: [chat]
  - match: {severity: critical}
    notify: [pager]
`, []string{`t.yaml:2:5: a route without match is the default route and must be the last route`}},
		{"two default routes", `
routes:
  - notify: [chat]
  - notify: [pager]
`, []string{`t.yaml:2:5: a route without match is the default route and must be the last route`}},
		{"empty match", `
routes:
  - match: {}
    notify: [chat]
`, []string{`t.yaml:2:5: match must name severity, group or labels; leave match out for the default route`}},
		{"bad severity", `
routes:
  - match: {severity: high}
    notify: [chat]
`, []string{`t.yaml:2:13: severity must be critical, warning or info, got "high"`}},
		{"unknown match key", `
routes:
  - match: {sevrity: critical}
    notify: [chat]
`, []string{`t.yaml:2:13: unknown key "sevrity" in match`}},
		{"unknown route key", `
routes:
  - match: {group: a}
    notify: [chat]
    recieve: x
`, []string{`t.yaml:4:5: unknown key "recieve" in route`}},
		{"no notify", `
routes:
  - match: {group: a}
    repeat: 1h
`, []string{`t.yaml:2:5: route needs notify: a list of notifier names`}},
		{"empty notify", `
routes:
  - match: {group: a}
    notify: []
`, []string{`t.yaml:3:5: notify must list at least one notifier`}},
		{"duplicate notify", `
routes:
  - match: {group: a}
    notify: [chat, chat]
`, []string{`t.yaml:3:20: notifier "chat" is listed twice`}},
		{"bad repeat", `
routes:
  - match: {group: a}
    notify: [chat]
    repeat: 10ms
`, []string{`t.yaml:4:5: repeat must be 0 (no reminders) or at least 1s, got 10ms`}},
		{"repeat not a duration", `
routes:
  - match: {group: a}
    notify: [chat]
    repeat: soon
`, []string{`t.yaml:4:13: repeat must be a duration such as 30s, 2m, 1h or 7d, got "soon"`}},
		{"continue on the default route", `
routes:
  - notify: [chat]
    continue: true
`, []string{`t.yaml:3:5: continue does not apply to the default route (a route without match)`}},
		{"continue not a bool", `
routes:
  - match: {group: a}
    notify: [chat]
    continue: yes
`, []string{`t.yaml:4:15: continue must be true or false, got "yes"`}},
		{"routes not a list", `
routes: {notify: [chat]}
`, []string{`t.yaml:1:9: routes must be a list, got a mapping`}},
		{"coverage unknown notifier", `
coverage:
  notify: [nope]
`, []string{`t.yaml:2:12: unknown notifier "nope"`}},
		{"coverage unknown key", `
coverage:
  after: 10m
`, []string{`t.yaml:2:3: unknown key "after" in coverage`}},
		{"bad rate limit", `
notifiers:
  - {name: x, type: slack, url: "https://a.example/", rate_limit: fast}
`, []string{`t.yaml:2:55: rate_limit must be COUNT/PERIOD such as 1/s, 120/m, 10/30s or 1/1d, or none, got "fast"`}},
		{"notifier repeat too short", `
notifiers:
  - {name: x, type: slack, url: "https://a.example/", repeat: 1ms}
`, []string{`t.yaml:2:55: repeat must be 0 (no reminders) or at least 1s, got 1ms`}},
		{"flap keys", `
defaults:
  flap_threshold: -1
  flap_window: 0s
  unknown_after: -1m
checks:
  - {name: a, type: tcp, target: "a:1", flap_threshold: two, flap_window: -1s}
`, []string{
			`t.yaml:2:3: flap_threshold must not be negative, got -1 (0 turns flap dampening off)`,
			`t.yaml:3:3: flap_window must be positive, got 0s`,
			`t.yaml:4:3: unknown_after must not be negative, got -1m0s`,
			`t.yaml:6:57: flap_threshold must be an integer, got "two"`,
			`t.yaml:6:62: flap_window must be positive, got -1s`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.doc
			if tc.name != "bad rate limit" && tc.name != "notifier repeat too short" {
				doc += `
notifiers:
  - {name: pager, type: pagerduty, routing_key: k}
  - {name: chat, type: slack, url: "https://hooks.example.com/x"}
`
			}
			_, err := Parse("t.yaml", y(doc), env(nil))
			checkErrors(t, err, tc.want)
		})
	}
}

func TestParseRateLimit(t *testing.T) {
	for in, want := range map[string]RateLimit{
		"1/s": {1, time.Second}, "120/m": {120, time.Minute}, "2/h": {2, time.Hour}, "10/30s": {10, 30 * time.Second},
		" 3 / 500ms ": {3, 500 * time.Millisecond}, "none": {}, "0": {},
		// d and w as every duration of the configuration reads them.
		"1/1d": {1, 24 * time.Hour}, "1/d": {1, 24 * time.Hour}, "5/2d": {5, 48 * time.Hour},
		"3/w": {3, 7 * 24 * time.Hour}, "2/1w": {2, 7 * 24 * time.Hour}, "10/1d12h": {10, 36 * time.Hour},
		"1/1.5d": {1, 36 * time.Hour},
	} {
		got, ok := ParseRateLimit(in)
		if !ok || got != want {
			t.Errorf("ParseRateLimit(%q) = %+v, %v; want %+v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "1", "0/s", "-1/s", "+1/s", "1/", "1/x", "1/-1d", "1/0d", "1/1dd", "1/1y", "1/-1s", "1/0s", "x/s", "1/s/s"} {
		if got, ok := ParseRateLimit(in); ok {
			t.Errorf("ParseRateLimit(%q) = %+v, want an error", in, got)
		}
	}
	for _, s := range []string{"1/s", "120/m", "2/h", "1/d", "3/w", "10/30s", "none"} {
		r, _ := ParseRateLimit(s)
		if r.String() != s {
			t.Errorf("%q round-trips as %q", s, r.String())
		}
	}
	// Any limit's String reads back as the same limit.
	for _, r := range []RateLimit{{1, 36 * time.Hour}, {4, 2 * 7 * 24 * time.Hour}, {7, 90 * time.Second}} {
		if back, ok := ParseRateLimit(r.String()); !ok || back != r {
			t.Errorf("%+v renders %q, which reads back as %+v, %v", r, r.String(), back, ok)
		}
	}
}

func TestRateLimitDaysInConfig(t *testing.T) {
	cfg, err := Parse("t.yaml", y(`
checks:
  - {name: a, type: tcp, target: "a:1", notify: [daily, weekly]}
notifiers:
  - {name: daily, type: slack, url: "https://a.example/", rate_limit: 1/1d}
  - {name: weekly, type: webhook, url: "https://b.example/", rate_limit: 20/2w}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]RateLimit{"daily": {1, 24 * time.Hour}, "weekly": {20, 14 * 24 * time.Hour}}
	for _, n := range cfg.Notifiers {
		if n.RateLimit == nil || *n.RateLimit != want[n.Name] {
			t.Errorf("notifier %s: rate limit %v, want %+v", n.Name, n.RateLimit, want[n.Name])
		}
	}
}

func TestRouteMatch(t *testing.T) {
	api := &Check{Name: "api", Severity: "critical", Group: "Public", Labels: map[string]string{"team": "web", "tier": "1"}}
	for _, tc := range []struct {
		m    RouteMatch
		want bool
	}{
		{RouteMatch{}, true},
		{RouteMatch{Severity: "critical"}, true},
		{RouteMatch{Severity: "warning"}, false},
		{RouteMatch{Group: "Public"}, true},
		{RouteMatch{Group: "public"}, false},
		{RouteMatch{Labels: map[string]string{"team": "web"}}, true},
		{RouteMatch{Labels: map[string]string{"team": "web", "tier": "1"}}, true},
		{RouteMatch{Labels: map[string]string{"team": "web", "tier": "2"}}, false},
		{RouteMatch{Labels: map[string]string{"owner": ""}}, false},
		{RouteMatch{Severity: "critical", Group: "Public", Labels: map[string]string{"tier": "1"}}, true},
		{RouteMatch{Severity: "critical", Group: "Other"}, false},
	} {
		if got := tc.m.Matches(api); got != tc.want {
			t.Errorf("%+v.Matches(api) = %v, want %v", tc.m, got, tc.want)
		}
	}
}

// notify_maintenance on a route: a bool, off by default.
func TestRouteNotifyMaintenance(t *testing.T) {
	c := mustParse(t, "r.yaml", y(`
checks:
  - {name: api, type: tcp, target: "a:1", severity: critical}
routes:
  - match: {severity: critical}
    notify: [chat]
    notify_maintenance: true
    continue: true
  - match: {severity: critical}
    notify: [pager]
`+routeNotifiers), env(nil))
	if !c.Routes[0].NotifyMaintenance || c.Routes[1].NotifyMaintenance {
		t.Errorf("Routes = %+v", c.Routes)
	}
	_, err := Parse("t.yaml", y(`
checks:
  - {name: api, type: tcp, target: "a:1"}
routes:
  - {notify: [chat], notify_maintenance: yes}
`+routeNotifiers), env(nil))
	checkErrors(t, err, []string{`t.yaml:4:42: notify_maintenance must be true or false, got "yes"`})
}
