package cluster

import (
	"testing"

	"github.com/vantage-dev/vantage/statuspage"
)

// Member converts to statuspage.Member: keep the fields in step.
func TestMemberConvertsToStatuspage(t *testing.T) {
	m := Member{Name: "a", Region: "eu", State: StateSuspect, Addr: "127.0.0.1:7946", Version: "v1", ConfigHash: "h", ConfigMismatch: true}
	s := statuspage.Member(m)
	if s.Name != "a" || s.State != "suspect" || !s.ConfigMismatch || s.Addr != m.Addr {
		t.Errorf("%+v", s)
	}
}
