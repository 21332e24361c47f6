package node

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/statuspage"
)

// A push check in a three-region cluster: the job reports to a different
// node each time and every node counts it; when it stops, the check goes
// down once period + grace passed and pages exactly once; when it reports
// again, one resolve.
func TestMeshPushCheck(t *testing.T) {
	hook := newHookRecorder(t)
	const token = "job-token-0123456789"
	nodes := startMesh(t, fmt.Sprintf(`
cluster:
  regions: [eu, us, ap]
  quorum: 2
  gossip: local
checks:
  - {name: backup, type: push, token: %s, period: 2s, grace: 5s, notify: [hook]}
notifiers:
  - {name: hook, type: webhook, url: %s}
`, token, hook.srv.URL), []string{"eu", "us", "ap"})
	var urls []string
	for _, m := range nodes {
		srv := httptest.NewServer(m.n.Handler())
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	push := func(i int, method, auth, query string) int {
		t.Helper()
		req, _ := http.NewRequest(method, urls[i%len(urls)]+"/api/v1/push/backup"+query, strings.NewReader("done"))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := push(0, "POST", "wrong-token-0123456789", ""); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	if code := push(0, "POST", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	for i := range 3 { // a different node each time
		method, auth, query := "POST", token, ""
		if i == 1 {
			method, auth, query = "GET", "", "?token="+token
		}
		if code := push(i, method, auth, query); code != http.StatusOK {
			t.Fatalf("report %d to node %d: %d", i, i, code)
		}
	}
	waitMesh(t, nodes, "backup up everywhere", func(st *statuspage.Status) bool {
		return checkByName(st, "backup").State == "up"
	})
	stopped := time.Now()
	waitMesh(t, nodes, "backup down everywhere once the job stopped reporting", func(st *statuspage.Status) bool {
		return checkByName(st, "backup").State == "down"
	})
	if d := time.Since(stopped); d < 7*time.Second-time.Second {
		t.Fatalf("down %s after the last report, before period + grace (7 s)", d)
	}
	incident := checkByName(nodes[0].n.Status(), "backup").IncidentID
	for deadline := time.Now().Add(20 * time.Second); len(hook.all()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no page when the job stopped reporting")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := push(2, "POST", token, ""); code != http.StatusOK {
		t.Fatalf("report after the outage: %d", code)
	}
	waitMesh(t, nodes, "backup up again everywhere", func(st *statuspage.Status) bool {
		return checkByName(st, "backup").State == "up"
	})
	for deadline := time.Now().Add(20 * time.Second); len(hook.all()) < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("no resolve: %v", hook.all())
		}
		time.Sleep(20 * time.Millisecond)
	}
	hook.onePage(t, incident)
}
