package store_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/report"
	"github.com/vantage-dev/vantage/store"
)

// BenchmarkReport1000Checks90Days is an SLA report of 1,000 checks in 3
// regions over 90 days: 270,000 day buckets with their histograms,
// 8 state changes and 4 incidents per check, a daily recurring maintenance
// window over 100 checks and a one-off one over all of them. "build" reads
// and computes; "json" and "html" also render.
func BenchmarkReport1000Checks90Days(b *testing.B) {
	const nChecks, days = 1000, 90
	from := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, days)
	now := to.Add(time.Hour)
	s, err := store.Open(filepath.Join(b.TempDir(), "v.db"), store.Options{Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	var yaml strings.Builder
	yaml.WriteString("cluster:\n  regions: [eu, us, ap]\nchecks:\n")
	names := make([]string, nChecks)
	for i := range names {
		names[i] = fmt.Sprintf("check-%04d", i)
		fmt.Fprintf(&yaml, "  - name: %s\n    type: tcp\n    target: 127.0.0.1:%d\n    group: g%02d\n", names[i], 1000+i, i%20)
	}
	yaml.WriteString("maintenance:\n  - checks: [" + strings.Join(names[:100], ", ") + "]\n    every: \"0 3 * * *\"\n    duration: 30m\n")
	yaml.WriteString("  - checks: [" + strings.Join(names, ", ") + "]\n    start: 2026-10-10T00:00:00Z\n    end: 2026-10-10T02:00:00Z\n")
	cfg, err := config.Parse("bench.yaml", []byte(yaml.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}

	store.SeedDailyForBench(b, s, names, []string{"eu", "us", "ap"}, from, days)
	for i, name := range names {
		if err := s.RecordStateChange(ctx, store.StateChange{Check: name, Time: from.Add(-time.Hour), From: "unknown", To: "up"}); err != nil {
			b.Fatal(err)
		}
		for k := range 4 {
			start := from.Add(time.Duration(k*20+i%17)*24*time.Hour + time.Duration(i)*time.Minute)
			end := start.Add(time.Duration(5+i%50) * time.Minute)
			id := fmt.Sprintf("%s-%d", name, k)
			if _, err := s.OpenIncident(ctx, store.Incident{ID: id, Check: name, StartedAt: start}); err != nil {
				b.Fatal(err)
			}
			if _, err := s.ResolveIncident(ctx, id, end); err != nil {
				b.Fatal(err)
			}
			if err := s.RecordStateChange(ctx, store.StateChange{Check: name, Time: start, From: "up", To: "down", IncidentID: id}); err != nil {
				b.Fatal(err)
			}
			if err := s.RecordStateChange(ctx, store.StateChange{Check: name, Time: end, From: "down", To: "up", IncidentID: id}); err != nil {
				b.Fatal(err)
			}
		}
	}
	p := report.Params{From: from, To: to, Now: now}
	for _, format := range []string{"build", report.FormatJSON, report.FormatHTML} {
		b.Run(format, func(b *testing.B) {
			for b.Loop() {
				r, err := report.Build(ctx, s, cfg, p)
				if err != nil {
					b.Fatal(err)
				}
				if len(r.Checks) != nChecks || r.Total.Incidents != 4*nChecks || len(r.Checks[0].Days) != days ||
					r.Total.Latency[report.AllRegions].Results != nChecks*days*3*2880 || len(r.Checks[0].Days[days-1].P95MS) != 3 {
					b.Fatalf("%d checks, %d incidents, %d results", len(r.Checks), r.Total.Incidents, r.Total.Latency[report.AllRegions].Results)
				}
				if format != "build" {
					if err := report.Render(io.Discard, r, format); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
