package node

import (
	"context"
	"crypto/rand"
	"log/slog"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/cluster"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier/smtptest"
	"github.com/vantage-dev/vantage/report"
	"github.com/vantage-dev/vantage/store"
)

// seedNovember stores the history every node holds of November 2026: api
// up since October, down 2026-11-10 10:00–11:30 UTC (5,400 s) and from
// 2026-11-30 22:30 UTC to 2026-12-01 00:30 UTC, of which 1,800 s fall in
// November in Europe/Berlin (it ends at 23:00 UTC).
func seedNovember(t *testing.T, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	ts := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []store.StateChange{
		{Check: "api", Time: ts("2026-10-01T00:00:00Z"), From: "unknown", To: "up"},
		{Check: "api", Time: ts("2026-11-10T10:00:00Z"), From: "up", To: "down", IncidentID: "inc-nov"},
		{Check: "api", Time: ts("2026-11-10T11:30:00Z"), From: "down", To: "up", IncidentID: "inc-nov"},
		{Check: "api", Time: ts("2026-11-30T22:30:00Z"), From: "up", To: "down", IncidentID: "inc-edge"},
		{Check: "api", Time: ts("2026-12-01T00:30:00Z"), From: "down", To: "up", IncidentID: "inc-edge"},
	} {
		if err := st.RecordStateChange(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, inc := range []struct{ id, start, end string }{
		{"inc-nov", "2026-11-10T10:00:00Z", "2026-11-10T11:30:00Z"},
		{"inc-edge", "2026-11-30T22:30:00Z", "2026-12-01T00:30:00Z"},
	} {
		if _, err := st.OpenIncident(ctx, store.Incident{ID: inc.id, Check: "api", Title: "api is down", StartedAt: ts(inc.start)}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.ResolveIncident(ctx, inc.id, ts(inc.end)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReportMailedOnceByTheCluster runs three nodes on loopback whose
// clocks read 1 December 2026, just after 08:00 in Europe/Berlin, each
// holding the same history of November, with a real SMTP server: the
// designated sender mails November's report once, with November's figures.
func TestReportMailedOnceByTheCluster(t *testing.T) {
	srv, _ := smtptest.Start(t, "none")
	target := closingListener(t)
	path := writeFile(t, "reports.yaml", `
cluster:
  regions: [eu, us, ap]
  gossip: local
checks:
  - name: api
    type: tcp
    target: `+target.Addr().String()+`
    interval: 5s
notifiers:
  - name: mail
    type: email
    smtp: `+srv.Addr()+`
    tls: none
    from: "Vantage <status@example.com>"
    to: [oncall@example.com]
statuspage:
  title: Acme
  timezone: Europe/Berlin
reports:
  to: ["Boss <boss@example.com>"]
  at: "08:00"
  notifier: mail
`)
	// 08:00:02 in Berlin (CET) on the 1st, moving on with real time.
	base, began := time.Date(2026, 12, 1, 7, 0, 2, 0, time.UTC), time.Now()
	clock := func() time.Time { return base.Add(time.Since(began)) }
	key := make([]byte, 32)
	rand.Read(key)
	var nodes []*Node
	for _, region := range []string{"eu", "us", "ap"} {
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		name := region + "-1"
		level := slog.LevelWarn
		if os.Getenv("VANTAGE_TEST_LOG") != "" {
			level = slog.LevelDebug
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", name)
		g := &cluster.Config{Name: name, Region: region, Bind: "127.0.0.1:0", Profile: "local", Key: key, Logger: log}
		if len(nodes) > 0 {
			g.Join = []string{nodes[0].GossipAddr()}
		}
		dir := t.TempDir()
		n, err := New(context.Background(), Options{Config: cfg, Name: name, Region: region, Now: clock, Logger: log, Gossip: g,
			DBPath: filepath.Join(dir, "v.db"), OutboxPath: filepath.Join(dir, "outbox.db")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		seedNovember(t, n.Store())
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(srv.Messages()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no report mail within 60 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Every node learns that it went out, then decides twice more; no
	// outbox holds anything pending.
	const id = "report:2026-11"
	for _, n := range nodes {
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, sent := n.mesh.Sent.DeliveredBy(id, "trigger", "mail")
			p, err := n.outbox.Pending(context.Background())
			if sent && err == nil && len(p) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: delivered in its sent log %v, pending %v (%v)", n.Name(), sent, p, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, n := range nodes {
		ticks := n.ext.mailer.Ticks()
		deadline := time.Now().Add(10 * time.Second)
		for n.ext.mailer.Ticks() < ticks+2 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the report mailer stopped", n.Name())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d report mails, want 1", len(msgs))
	}
	queuedBy := ""
	for _, n := range nodes {
		es, err := n.outbox.Entries(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.State == "delivered" && e.Attempts > 0 {
				queuedBy += n.Name()
			}
		}
	}
	if want := nodes[0].ev.View().Sender; queuedBy != want {
		t.Errorf("delivered by %q, want the designated sender %q", queuedBy, want)
	}

	// The sender stops; the next one takes over and, finding the mail in
	// the sent log, does not send it again.
	var sender *Node
	var rest []*Node
	for _, n := range nodes {
		if n.Name() == queuedBy {
			sender = n
		} else {
			rest = append(rest, n)
		}
	}
	if sender == nil {
		t.Fatal("no sender")
	}
	if err := sender.Close(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for rest[0].ev.View().Sender == queuedBy || rest[0].ev.View().Sender == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no new sender after %s stopped", queuedBy)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, n := range rest {
		ticks := n.ext.mailer.Ticks()
		deadline := time.Now().Add(20 * time.Second)
		for n.ext.mailer.Ticks() < ticks+uint64(report.MailTakeover/time.Second)+3 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the report mailer stopped", n.Name())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if es, err := n.outbox.Entries(context.Background(), id); err != nil || len(es) != 0 {
			t.Errorf("%s queued the report again after the sender stopped: %+v (%v)", n.Name(), es, err)
		}
	}
	if msgs := srv.Messages(); len(msgs) != 1 {
		t.Fatalf("%d report mails after the sender changed, want 1", len(msgs))
	}

	m := msgs[0]
	if m.From != "status@example.com" || strings.Join(m.To, ",") != "boss@example.com" {
		t.Errorf("envelope from %q to %q", m.From, m.To)
	}
	msg, text, files := smtptest.Mixed(t, m.Data)
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if subject != "Acme uptime report: November 2026" {
		t.Errorf("subject %q", subject)
	}
	// November in Berlin: 30 days (2,592,000 s), 7,200 s down in two
	// incidents: 99.722 %.
	for _, want := range []string{
		"Period: 2026-11-01 00:00 to 2026-12-01 00:00 (Europe/Berlin)",
		"Uptime: 99.722%",
		"Incidents: 2, downtime 2h, longest 1h 30m, mean time to recover 1h 30m",
		"  api   99.722%    2  2h\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the mail's text lacks %q:\n%s", want, text)
		}
	}
	html, csv := files["uptime-report-2026-11.html"], files["uptime-report-2026-11.csv"]
	if !strings.Contains(html, "Acme uptime report") || !strings.Contains(html, "99.722%") {
		t.Errorf("HTML attachment (%d bytes) lacks the title or the uptime", len(html))
	}
	if !strings.Contains(csv, "check,api,") || !strings.Contains(csv, ",7200,") {
		t.Errorf("CSV attachment:\n%s", csv)
	}
}
