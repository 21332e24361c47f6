package node

import (
	"context"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/report"
)

// extensions holds the node's operator features: SLA reports, ad-hoc
// probes from every region and failure snapshots. New calls init.
type extensions struct {
	// reports lets one report be made at a time: one reads every check's
	// day buckets over the period (about 0.6 s for 1,000 checks over 90 days).
	reports chan struct{}
	adhoc   adhocState
	snaps   snapState
	// mailer mails the previous month's report on the 1st (reports:).
	mailer *report.Mailer
}

func (x *extensions) init(n *Node) error {
	x.reports = make(chan struct{}, 1)
	x.adhoc.init()
	n.mesh.Ops.Probes.SetOnRequest(n.onProbeRequest)
	x.snaps.init(n)
	x.mailer = report.NewMailer(report.MailerOptions{
		Now: n.now, Logger: n.log.With("component", "reports"),
		Config: func() report.MailSettings { return report.MailSettingsOf(n.cfg.Load()) },
		Sender: n.reportSender,
		Make:   n.Report,
		Sent:   n.mesh.Sent, Claims: n.mesh.Claims, Outbox: n.outbox,
	})
	n.goRun(x.mailer.Run)
	return nil
}

// reportSender tells the report mailer whether this node mails: it is
// the designated sender (it sees a majority; degraded nodes are never
// chosen) and is not degraded itself, and it has started paging (the
// pager renews the mail's claim while its delivery is pending).
func (n *Node) reportSender() (bool, func(string) bool) {
	v := n.ev.View()
	ok := n.pager.Sweeps() > 0 && v.Sender == n.o.Name && !n.mesh.Health.Own().Degraded
	return ok, v.IsAlive
}

// Report makes the SLA report of p from this node's history (GET
// /api/v1/reports).
func (n *Node) Report(ctx context.Context, p report.Params) (*report.Report, error) {
	select {
	case n.ext.reports <- struct{}{}:
		defer func() { <-n.ext.reports }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	cfg := n.cfg.Load()
	if p.Now.IsZero() {
		p.Now = n.now()
	}
	if p.Title == "" {
		title := cfg.StatusPage.Title
		if title == "" {
			title = "Status"
		}
		p.Title = title + " uptime report"
	}
	// The windows scheduled through the API count as the config's.
	var extra []config.Maintenance
	for _, w := range n.mesh.Maint.Windows() {
		extra = append(extra, w.Maintenance())
	}
	in, err := report.InputFrom(ctx, n.store, cfg, p, extra)
	if err != nil {
		return nil, err
	}
	return report.Compute(in, p)
}

// ReportLocation is the zone report dates are read in: statuspage.timezone.
func (n *Node) ReportLocation() *time.Location { return n.cfg.Load().StatusPage.Location() }
