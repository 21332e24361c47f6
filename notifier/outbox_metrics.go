package notifier

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of vantage_notifications_total.
const (
	outcomeDelivered = "delivered" // the provider accepted it
	outcomeRetry     = "retry"     // a retryable failure: the entry stays pending
	outcomeFailed    = "failed"    // refused permanently
	outcomeSkipped   = "skipped"   // not sent: the Log shows another node delivered it
	outcomeHeld      = "held"      // not sent: the Gate held it; the entry stays pending
)

// pendingScrapeTimeout bounds the query behind vantage_outbox_pending, so
// a busy database does not stall a scrape.
const pendingScrapeTimeout = 2 * time.Second

var descOutboxPending = prometheus.NewDesc("vantage_outbox_pending",
	"Notifications waiting in the outbox, by notifier.", []string{"notifier"}, nil)

// outboxMetrics are an Outbox's metrics; they are registered only when
// OutboxOptions.Registerer is set, but always counted.
type outboxMetrics struct {
	reg           prometheus.Registerer
	notifications *prometheus.CounterVec
	pending       pendingCollector
}

func newOutboxMetrics(o *Outbox) *outboxMetrics {
	return &outboxMetrics{
		reg: o.opts.Registerer,
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vantage_notifications_total",
			Help: "Notification delivery attempts by notifier, action and outcome (delivered, retry, failed; " +
				"skipped: another node had delivered it; held: this node may not send).",
		}, []string{"notifier", "action", "outcome"}),
		pending: pendingCollector{o},
	}
}

func (m *outboxMetrics) register() error {
	if m.reg == nil {
		return nil
	}
	if err := m.reg.Register(m.notifications); err != nil {
		return fmt.Errorf("register vantage_notifications_total: %w", err)
	}
	if err := m.reg.Register(m.pending); err != nil {
		m.reg.Unregister(m.notifications)
		return fmt.Errorf("register vantage_outbox_pending: %w", err)
	}
	return nil
}

func (m *outboxMetrics) unregister() {
	if m.reg == nil {
		return
	}
	m.reg.Unregister(m.pending)
	m.reg.Unregister(m.notifications)
}

func (m *outboxMetrics) count(notifier string, action Action, outcome string) {
	m.notifications.WithLabelValues(notifier, string(action), outcome).Inc()
}

// pendingCollector reads the pending counts at scrape time: one gauge per
// configured notifier (0 when nothing waits), and one per notifier no
// longer configured whose entries still wait.
type pendingCollector struct{ o *Outbox }

func (c pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descOutboxPending }

func (c pendingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), pendingScrapeTimeout)
	defer cancel()
	pending, err := c.o.Pending(ctx)
	if err != nil {
		c.o.log.Warn("outbox: metrics: reading pending counts", "err", err)
		return
	}
	for name := range c.o.providers {
		ch <- prometheus.MustNewConstMetric(descOutboxPending, prometheus.GaugeValue, float64(pending[name]), name)
	}
	for name, n := range pending {
		if c.o.providers[name] == nil {
			ch <- prometheus.MustNewConstMetric(descOutboxPending, prometheus.GaugeValue, float64(n), name)
		}
	}
}
