package node

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/checker"
)

func TestCanaries(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound) // any answer proves the path works
	}))
	defer web.Close()
	ln := closingListener(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var changes []bool
	cs, err := newCanaries([]string{"tcp://" + ln.Addr().String(), web.URL + "/cdn-cgi/trace"}, checker.New(checker.Options{}), log, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	cs.onChange = func(ok bool, _ string) { changes = append(changes, ok) }
	ctx := context.Background()
	cs.probeOnce(ctx)
	if ok, why := cs.Healthy(); !ok {
		t.Fatalf("canaries fail with both targets up: %s", why)
	}
	ln.Close() // one of two down: still healthy (half pass)
	cs.probeOnce(ctx)
	if ok, why := cs.Healthy(); !ok {
		t.Fatalf("one failing canary of two blinded the region: %s", why)
	}
	web.Close()
	cs.probeOnce(ctx)
	ok, why := cs.Healthy()
	if ok || why == "" {
		t.Fatal("all canaries down, region still healthy")
	}
	if len(changes) != 1 || changes[0] {
		t.Fatalf("changes %v, want one change to unhealthy", changes)
	}

	none, _ := newCanaries(nil, checker.New(checker.Options{}), log, time.Now)
	none.probeOnce(ctx)
	if ok, _ := none.Healthy(); !ok {
		t.Fatal("no canaries configured must mean healthy")
	}
	if _, err := newCanaries([]string{"udp://1.2.3.4:53"}, nil, log, time.Now); err == nil {
		t.Fatal("udp canary accepted")
	}
}
