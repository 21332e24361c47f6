package notifier

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
)

const routerConfig = `
checks:
  - {name: api, type: tcp, target: "a:1", severity: critical, labels: {team: web}}
  - {name: www, type: tcp, target: "a:2", severity: warning, labels: {team: web}, group: Public}
  - {name: db, type: tcp, target: "a:3", severity: warning, labels: {team: data}}
  - {name: batch, type: tcp, target: "a:4", severity: info}
  - {name: own, type: tcp, target: "a:5", severity: info, notify: [mail]}
  - {name: own-crit, type: tcp, target: "a:6", severity: critical, notify: [chat]}
  - {name: core, type: tcp, target: "a:7", severity: critical, group: Core}
notifiers:
  - {name: pager, type: pagerduty, routing_key: k, repeat: 4h}
  - {name: chat, type: slack, url: "https://hooks.example.com/x", repeat: 30m}
  - {name: web-chat, type: slack, url: "https://hooks.example.com/web"}
  - {name: mail, type: webhook, url: "https://ops.example.com/"}
  - {name: core-pager, type: pagerduty, routing_key: c}
routes:
  - match: {group: Core}
    notify: [core-pager]
  - match: {severity: critical}
    notify: [pager]
    repeat: 1h
  - match: {labels: {team: web}}
    notify: [web-chat, chat]
    continue: true
  - match: {severity: warning}
    notify: [chat]
    repeat: 0s
  - notify: [mail]
    repeat: 2h
coverage:
  notify: [chat]
`

func TestRouter(t *testing.T) {
	cfg, err := config.Parse("r.yaml", []byte(routerConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	r := NewRouter(cfg)
	for _, tc := range []struct {
		check     string
		notifiers []string
		repeat    map[string]time.Duration
	}{
		// critical: the first match wins, the web route is not reached.
		{"api", []string{"pager"}, map[string]time.Duration{"pager": time.Hour, "chat": 0, "mail": 0}},
		// warning and web: the web route continues into the warning route;
		// chat is listed by both, the first route's (unset) repeat falls
		// through to the warning route's repeat 0.
		{"www", []string{"web-chat", "chat"}, map[string]time.Duration{"web-chat": 0, "chat": 0, "pager": 0}},
		// warning, another team: only the warning route.
		{"db", []string{"chat"}, map[string]time.Duration{"chat": 0}},
		// nothing matches: the default route, with its repeat.
		{"batch", []string{"mail"}, map[string]time.Duration{"mail": 2 * time.Hour}},
		// own notify and no matching route: no default route; the notifier's
		// own repeat.
		{"own", []string{"mail"}, map[string]time.Duration{"mail": 0}},
		// own notify plus a matching route.
		{"own-crit", []string{"chat", "pager"}, map[string]time.Duration{"chat": 30 * time.Minute, "pager": time.Hour}},
		// the first route matches and stops; core-pager has no repeat of its
		// own.
		{"core", []string{"core-pager"}, map[string]time.Duration{"core-pager": 0, "pager": 0}},
	} {
		c := cfg.CheckByName(tc.check)
		if got := r.Notifiers(c); !reflect.DeepEqual(got, tc.notifiers) {
			t.Errorf("Notifiers(%s) = %v, want %v", tc.check, got, tc.notifiers)
		}
		for n, want := range tc.repeat {
			if got := r.Repeat(c, n); got != want {
				t.Errorf("Repeat(%s, %s) = %v, want %v", tc.check, n, got, want)
			}
		}
		if got := r.Coverage(c); !reflect.DeepEqual(got, []string{"chat"}) {
			t.Errorf("Coverage(%s) = %v", tc.check, got)
		}
	}
}

func TestRouterWithoutRoutes(t *testing.T) {
	cfg, err := config.Parse("r.yaml", []byte(`
checks:
  - {name: api, type: tcp, target: "a:1", notify: [chat]}
  - {name: quiet, type: tcp, target: "a:2"}
notifiers:
  - {name: chat, type: slack, url: "https://hooks.example.com/x", repeat: 1h}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRouter(cfg)
	if got := r.Notifiers(cfg.CheckByName("api")); !reflect.DeepEqual(got, []string{"chat"}) {
		t.Errorf("api: %v", got)
	}
	if got := r.Notifiers(cfg.CheckByName("quiet")); len(got) != 0 {
		t.Errorf("quiet: %v", got)
	}
	if got := r.Repeat(cfg.CheckByName("api"), "chat"); got != time.Hour {
		t.Errorf("repeat %v", got)
	}
	if got := r.Coverage(cfg.CheckByName("api")); len(got) != 0 {
		t.Errorf("coverage %v", got)
	}
	// The router does not hand out its own slices.
	got := r.Notifiers(cfg.CheckByName("api"))
	got[0] = "changed"
	if cfg.CheckByName("api").Notify[0] != "chat" || !strings.EqualFold(r.Notifiers(cfg.CheckByName("api"))[0], "chat") {
		t.Error("Notifiers aliases the config")
	}
}

// Maintenance notices go to the notifiers of the routes that apply to a
// check (as its incidents' routes do) and set notify_maintenance; a
// check's own notify list does not get them.
func TestRouterMaintenance(t *testing.T) {
	cfg, err := config.Parse("r.yaml", []byte(`
checks:
  - {name: api, type: tcp, target: "a:1", severity: critical, labels: {team: web}}
  - {name: www, type: tcp, target: "a:2", severity: warning, labels: {team: web}}
  - {name: batch, type: tcp, target: "a:4", severity: info}
  - {name: own, type: tcp, target: "a:5", severity: info, notify: [mail]}
notifiers:
  - {name: pager, type: pagerduty, routing_key: k}
  - {name: chat, type: slack, url: "https://hooks.example.com/x"}
  - {name: web-chat, type: slack, url: "https://hooks.example.com/web"}
  - {name: mail, type: webhook, url: "https://ops.example.com/"}
routes:
  - match: {labels: {team: web}}
    notify: [web-chat, chat]
    notify_maintenance: true
    continue: true
  - match: {severity: critical}
    notify: [pager]
  - match: {severity: warning}
    notify: [chat]
    notify_maintenance: true
  - notify: [mail]
    notify_maintenance: true
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	r := NewRouter(cfg)
	for check, want := range map[string][]string{
		"api":   {"web-chat", "chat"}, // the critical route pages but does not ask
		"www":   {"web-chat", "chat"}, // chat once
		"batch": {"mail"},             // the default route
		"own":   nil,                  // its own notify list; the default route does not apply
	} {
		if got := r.Maintenance(cfg.CheckByName(check)); !reflect.DeepEqual(got, want) {
			t.Errorf("Maintenance(%s) = %v, want %v", check, got, want)
		}
	}
}
