package statuspage

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A check's page shows when its certificate expires, when the node knows
// it, in the page's language and time zone; a check without one shows
// nothing of the kind; /api/v1/status carries it without a token; a new
// certificate shows at the next render.
func TestCheckPageCertExpiry(t *testing.T) {
	exp := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	withCert := func() *Status {
		return withCheck(testStatus(), 0, func(c *CheckStatus) { e := exp; c.CertExpiry = &e })
	}
	for _, tc := range []struct {
		site Site
		want string
	}{
		{Site{}, `<p class="meta cert" data-role="cert">Certificate expires <time datetime="2027-03-01T12:00:00Z">1 Mar 2027 12:00 UTC</time></p>`},
		{Site{Locale: "ko", Timezone: "Asia/Seoul"}, `<p class="meta cert" data-role="cert">인증서 만료 <time datetime="2027-03-01T12:00:00Z">2027년 3월 1일 21:00 KST</time></p>`},
	} {
		t.Run("locale "+tc.site.Locale, func(t *testing.T) {
			p := testPage()
			p.Site = tc.site
			s, src, ts := newServerWith(t, nil, withCert(), p)
			_, page := fetch(t, ts, "/checks/api")
			if !strings.Contains(string(page), tc.want) {
				t.Fatalf("the check page lacks %s:\n%s", tc.want, page)
			}
			for _, other := range []string{"/checks/db", "/checks/web"} {
				if _, b := fetch(t, ts, other); strings.Contains(string(b), `data-role="cert"`) {
					t.Fatalf("%s shows a certificate it has none of:\n%s", other, b)
				}
			}
			// A newer certificate, nothing else changed: the page shows its
			// date at the next render.
			renewed := exp.Add(90 * 24 * time.Hour)
			src.mu.Lock()
			src.st = withCheck(src.st, 0, func(c *CheckStatus) { c.CertExpiry = &renewed })
			src.mu.Unlock()
			s.RefreshNow(context.Background())
			_, page = fetch(t, ts, "/checks/api")
			if !strings.Contains(string(page), `datetime="2027-05-30T12:00:00Z"`) || strings.Contains(string(page), `datetime="2027-03-01T12:00:00Z"`) {
				t.Fatalf("after a renewal the page does not show the new date:\n%s", page)
			}
			// The date goes once the node no longer knows it.
			src.mu.Lock()
			src.st = withCheck(src.st, 0, func(c *CheckStatus) { c.CertExpiry = nil })
			src.mu.Unlock()
			s.RefreshNow(context.Background())
			if _, b := fetch(t, ts, "/checks/api"); strings.Contains(string(b), `data-role="cert"`) {
				t.Fatalf("the page still shows a certificate the node no longer knows:\n%s", b)
			}
		})
	}

	_, _, ts := newServerWith(t, nil, withCert(), testPage())
	_, body := fetch(t, ts, "/api/v1/status")
	var st struct {
		Checks []struct {
			Name       string     `json:"name"`
			CertExpiry *time.Time `json:"cert_expiry"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Checks {
		switch {
		case c.Name == "api" && (c.CertExpiry == nil || !c.CertExpiry.Equal(exp)):
			t.Fatalf("public /api/v1/status: api's cert_expiry %v, want %s", c.CertExpiry, exp)
		case c.Name != "api" && c.CertExpiry != nil:
			t.Fatalf("public /api/v1/status: %s has cert_expiry %v", c.Name, c.CertExpiry)
		}
	}
	if strings.Count(string(body), `"cert_expiry"`) != 1 {
		t.Fatalf("cert_expiry should appear once (omitted when unknown):\n%s", body)
	}
}
