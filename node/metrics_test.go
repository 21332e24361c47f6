package node

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/vantage-dev/vantage/checker"
)

// /metrics speaks blackbox_exporter's vocabulary for this node's probes
// (probe_success, probe_duration_seconds, probe_http_duration_seconds by
// phase, probe_http_status_code, probe_ssl_earliest_cert_expiry,
// probe_dns_lookup_time_seconds, labelled check and region) beside the
// vantage_* cluster metrics, and passes the Prometheus linter that
// `promtool check metrics` runs.
func TestMetricsBlackboxNames(t *testing.T) {
	tlsTarget := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	t.Cleanup(tlsTarget.Close)
	n := soloNode(t, `
defaults: {interval: 1s, fail_after: 1, recover_after: 1}
checks:
  - {name: api, type: http, url: "`+tlsTarget.URL+`/", insecure_skip_verify: true}
`, checker.New(checker.Options{}))
	waitState(t, n, "api", "up")
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	var body string
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if strings.Contains(body, `probe_ssl_earliest_cert_expiry{check="api",region="local"}`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{
		`probe_success{check="api",region="local"} 1`,
		`probe_http_status_code{check="api",region="local"} 200`,
		`probe_http_duration_seconds{check="api",phase="tls",region="local"}`,
		`probe_duration_seconds{check="api",region="local"}`,
		`probe_dns_lookup_time_seconds{check="api",region="local"}`,
		`vantage_check_up{check="api"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %s:\n%s", want, body)
		}
	}
	i := strings.Index(body, `probe_ssl_earliest_cert_expiry{check="api",region="local"} `)
	if i < 0 {
		t.Fatalf("no probe_ssl_earliest_cert_expiry:\n%s", body)
	}
	line := body[i:]
	line = strings.Fields(line[:strings.IndexByte(line, '\n')])[1]
	exp, err := strconv.ParseFloat(line, 64)
	if err != nil || time.Unix(int64(exp), 0).Before(time.Now()) {
		t.Fatalf("certificate expiry %q", line)
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
