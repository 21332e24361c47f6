package node

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/checker"
)

// A node shows when a check's certificate expires (the earliest that
// matters, as probe_ssl_earliest_cert_expiry) in its status and on the
// check's page; a check without TLS has none.
func TestStatusCertExpiry(t *testing.T) {
	tlsTarget := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	t.Cleanup(tlsTarget.Close)
	ln := closingListener(t)
	n := soloNode(t, `
defaults: {interval: 1s, fail_after: 1, recover_after: 1}
checks:
  - {name: api, type: http, url: "`+tlsTarget.URL+`/", insecure_skip_verify: true}
  - {name: db, type: tcp, target: "`+ln.Addr().String()+`"}
`, checker.New(checker.Options{}))
	waitState(t, n, "api", "up")
	waitState(t, n, "db", "up")
	want := tlsTarget.Certificate().NotAfter.UTC()
	for deadline := time.Now().Add(20 * time.Second); ; {
		c := checkByName(n.Status(), "api")
		if c != nil && c.CertExpiry != nil {
			if !c.CertExpiry.Equal(want) {
				t.Fatalf("api's cert_expiry %s, want the served certificate's %s", c.CertExpiry, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("api's status never carried its certificate's expiry")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c := checkByName(n.Status(), "db"); c == nil || c.CertExpiry != nil {
		t.Fatalf("db (tcp) status %+v: want no cert_expiry", c)
	}
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	stamp := `datetime="` + want.Format(time.RFC3339) + `"`
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get(srv.URL + "/checks/api")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), `data-role="cert"`) && strings.Contains(string(b), stamp) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the check page never showed the certificate's expiry (%s):\n%s", stamp, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
