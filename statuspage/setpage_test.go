package statuspage

import (
	"strings"
	"testing"
)

// A config reload replaces the page's presentation: the next render shows
// the new title and display names.
func TestSetPageReRenders(t *testing.T) {
	s, _, ts := newTestServer(t, nil)
	if _, body := fetch(t, ts, "/"); strings.Contains(string(body), "Reloaded Status") {
		t.Fatal("test premise: the new title is already shown")
	}
	p := testPage()
	p.Title = "Reloaded Status"
	p.Checks[0].DisplayName = "Renamed API"
	s.SetPage(p)
	_, body := fetch(t, ts, "/")
	for _, want := range []string{"Reloaded Status", "Renamed API"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("page after SetPage lacks %q", want)
		}
	}
}
