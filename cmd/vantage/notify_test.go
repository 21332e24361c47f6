package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// notifyServer records the requests of `vantage notify test` and answers
// with the status answer gives for the n-th request.
type notifyServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []notifyReq
}

type notifyReq struct {
	Method, Path, Query string
	Header              http.Header
	Body                map[string]any
	At                  time.Time
}

func newNotifyServer(t *testing.T, answer func(n int) (int, string)) *notifyServer {
	s := &notifyServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		json.Unmarshal(b, &body)
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, notifyReq{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body, time.Now()})
		s.mu.Unlock()
		status, text := answer(n)
		w.WriteHeader(status)
		io.WriteString(w, text)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *notifyServer) requests() []notifyReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]notifyReq(nil), s.reqs...)
}

func notifyConfig(t *testing.T, notifiers string) string {
	return writeFile(t, "n.yaml", "statuspage: {url: 'https://status.example.com/'}\nnotifiers:\n"+notifiers)
}

// TestNotifyTestPagerDuty: a trigger, then the resolve of the same
// dedup_key; both answers printed.
func TestNotifyTestPagerDuty(t *testing.T) {
	pd := newNotifyServer(t, func(n int) (int, string) {
		return http.StatusAccepted, fmt.Sprintf(`{"status":"success","message":"Event processed","n":%d}`, n)
	})
	cfg := notifyConfig(t, fmt.Sprintf("  - {name: pager, type: pagerduty, routing_key: rk, url: %q}\n", pd.URL+"/v2/enqueue"))
	out, errOut, code := vantage(t, nil, "notify", "test", "--config", cfg, "--notifier", "pager")
	want := "test trigger delivered to pager (pagerduty): 202 {\"status\":\"success\",\"message\":\"Event processed\",\"n\":0}\n" +
		"test resolve delivered to pager (pagerduty): 202 {\"status\":\"success\",\"message\":\"Event processed\",\"n\":1}\n"
	if code != 0 || out != want {
		t.Fatalf("code %d\nout %q\nerr %q", code, out, errOut)
	}
	reqs := pd.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	key, _ := reqs[0].Body["dedup_key"].(string)
	payload, _ := reqs[0].Body["payload"].(map[string]any)
	if reqs[0].Path != "/v2/enqueue" || reqs[0].Body["event_action"] != "trigger" || !strings.HasPrefix(key, "test-") ||
		payload["summary"] != "vantage TEST notification: vantage-test" || payload["severity"] != "info" {
		t.Fatalf("trigger %+v", reqs[0].Body)
	}
	if reqs[1].Body["event_action"] != "resolve" || reqs[1].Body["dedup_key"] != key || reqs[1].Body["routing_key"] != "rk" {
		t.Fatalf("resolve %+v", reqs[1].Body)
	}
}

// TestNotifyTestOpsgenie: the alert is created, then closed by its alias.
func TestNotifyTestOpsgenie(t *testing.T) {
	og := newNotifyServer(t, func(n int) (int, string) {
		return http.StatusAccepted, `{"result":"Request will be processed","requestId":"r` + fmt.Sprint(n) + `"}`
	})
	cfg := notifyConfig(t, fmt.Sprintf("  - {name: genie, type: opsgenie, api_key: key-1, url: %q}\n", og.URL))
	out, errOut, code := vantage(t, nil, "notify", "test", "--config", cfg, "--notifier", "genie")
	if code != 0 || !strings.Contains(out, `test trigger delivered to genie (opsgenie): 202 {"result":"Request will be processed","requestId":"r0"}`) ||
		!strings.Contains(out, `test resolve delivered to genie (opsgenie): 202 {"result":"Request will be processed","requestId":"r1"}`) {
		t.Fatalf("code %d\nout %q\nerr %q", code, out, errOut)
	}
	reqs := og.requests()
	alias, _ := reqs[0].Body["alias"].(string)
	if len(reqs) != 2 || reqs[0].Path != "/v2/alerts" || reqs[0].Header.Get("Authorization") != "GenieKey key-1" ||
		!strings.HasPrefix(alias, "test-") || reqs[0].Body["priority"] != "P5" {
		t.Fatalf("create %+v", reqs[0])
	}
	if reqs[1].Path != "/v2/alerts/"+alias+"/close" || reqs[1].Query != "identifierType=alias" ||
		reqs[1].Body["note"] != "vantage TEST notification resolved: vantage-test" {
		t.Fatalf("close %+v", reqs[1])
	}
}

// TestNotifyTestExitCodes: a webhook gets test then up; a refused trigger
// exits 1 without a resolve; a refused resolve exits 1 and says the alert
// may be open; an unknown notifier or bad flags exit 2.
func TestNotifyTestExitCodes(t *testing.T) {
	hook := newNotifyServer(t, func(int) (int, string) { return http.StatusAccepted, "queued" })
	broken := newNotifyServer(t, func(int) (int, string) { return http.StatusForbidden, "bad token" })
	flaky := newNotifyServer(t, func(n int) (int, string) {
		if n == 0 {
			return http.StatusAccepted, `{"status":"success"}`
		}
		return http.StatusBadRequest, `{"status":"invalid event"}`
	})
	cfg := notifyConfig(t, fmt.Sprintf(`  - {name: hook, type: webhook, url: %q}
  - {name: broken, type: slack, url: %q}
  - {name: flaky, type: pagerduty, routing_key: rk, url: %q}
`, hook.URL, broken.URL, flaky.URL))

	out, errOut, code := vantage(t, nil, "notify", "test", "--config", cfg, "--notifier", "hook")
	if code != 0 || out != "test trigger delivered to hook (webhook): 202 queued\ntest resolve delivered to hook (webhook): 202 queued\n" {
		t.Fatalf("hook: code %d out %q err %q", code, out, errOut)
	}
	reqs := hook.requests()
	if len(reqs) != 2 || reqs[0].Body["event"] != "test" || reqs[1].Body["event"] != "up" || reqs[1].Body["test"] != true ||
		reqs[0].Body["incident_id"] != reqs[1].Body["incident_id"] || reqs[1].Body["resolved_at"] == nil {
		t.Fatalf("webhook bodies %+v", reqs)
	}

	out, errOut, code = vantage(t, nil, "notify", "test", "--config", cfg, "--notifier", "broken")
	if code != 1 || out != "" || !strings.Contains(errOut, "test trigger not delivered to broken (slack): permanent error: status 403") ||
		len(broken.requests()) != 1 {
		t.Fatalf("broken: code %d out %q err %q", code, out, errOut)
	}

	out, errOut, code = vantage(t, nil, "notify", "test", "--config", cfg, "--notifier", "flaky")
	if code != 1 || !strings.Contains(out, "test trigger delivered to flaky (pagerduty): 202") ||
		!strings.Contains(errOut, "test resolve not delivered to flaky (pagerduty): permanent error: status 400") ||
		!strings.Contains(errOut, "may still be open in flaky") {
		t.Fatalf("flaky: code %d out %q err %q", code, out, errOut)
	}

	for _, args := range [][]string{
		{"notify", "test", "--config", cfg, "--notifier", "nope"},
		{"notify", "test", "--config", cfg},
		{"notify", "send", "--config", cfg, "--notifier", "hook"},
		{"notify", "test", "--config", cfg, "--notifier", "hook", "--resolve-after", "-1s"},
	} {
		if _, _, code := vantage(t, nil, args...); code != 2 {
			t.Errorf("%v: code %d, want 2", args, code)
		}
	}
	// A bad config names FILE:LINE:COL.
	bad := writeFile(t, "bad.yaml", "notifiers:\n  - {name: sms, type: twilio, account_sid: AC1, auth_token: t, from: '+15005550006', to: ['010']}\n")
	if _, errOut, code := vantage(t, nil, "notify", "test", "--config", bad, "--notifier", "sms"); code != 2 ||
		!strings.Contains(errOut, bad+`:2:91: "010" is not a phone number in E.164 form`) {
		t.Errorf("bad config: code %d err %q", code, errOut)
	}
}

// TestNotifyTestResolveAfter waits between the two sends.
func TestNotifyTestResolveAfter(t *testing.T) {
	hook := newNotifyServer(t, func(int) (int, string) { return http.StatusOK, "ok" })
	cfg := notifyConfig(t, fmt.Sprintf("  - {name: hook, type: webhook, url: %q}\n", hook.URL))
	out, errOut, code := vantage(t, nil, "notify", "test", "--config", cfg, "--notifier", "hook", "--resolve-after", "300ms")
	if code != 0 || strings.Count(out, "delivered") != 2 {
		t.Fatalf("code %d out %q err %q", code, out, errOut)
	}
	reqs := hook.requests()
	if len(reqs) != 2 || reqs[1].Body["event"] != "up" {
		t.Fatalf("requests %+v", reqs)
	}
	if gap := reqs[1].At.Sub(reqs[0].At); gap < 300*time.Millisecond {
		t.Fatalf("resolved %v after the trigger", gap)
	}
}
