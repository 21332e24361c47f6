package main

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier"
)

// nodeMetrics are the node's Prometheus metrics, on a registry of its own.
// Gauges are read from the node's state at scrape time (collector), so
// probes pay nothing for them; counters are incremented where events happen.
type nodeMetrics struct {
	reg           *prometheus.Registry
	notifications *prometheus.CounterVec
	incidents     *prometheus.CounterVec
	probes        *prometheus.CounterVec
}

var (
	descProbeSuccess  = prometheus.NewDesc("vantage_probe_success", "Whether this node's latest probe of the check succeeded (1) or not (0).", []string{"check", "region"}, nil)
	descProbeDuration = prometheus.NewDesc("vantage_probe_duration_seconds", "Duration of this node's latest probe by phase (dns, connect, tls, first_byte, total).", []string{"check", "region", "phase"}, nil)
	descCheckState    = prometheus.NewDesc("vantage_check_state", "The check's cluster-wide state as this node sees it: 1 for the current state.", []string{"check", "state"}, nil)
	descCheckUp       = prometheus.NewDesc("vantage_check_up", "1 unless the check is down cluster-wide (unknown and maintenance count as up).", []string{"check"}, nil)
	descRegionVote    = prometheus.NewDesc("vantage_region_vote", "A region's vote on a check: 1 for the current vote (up, down, abstain).", []string{"check", "region", "vote"}, nil)
	descRegionElig    = prometheus.NewDesc("vantage_region_eligible", "Whether a configured region may vote (an alive node, canaries passing).", []string{"region"}, nil)
	descMembers       = prometheus.NewDesc("vantage_cluster_members", "Cluster members by state.", []string{"state"}, nil)
	descSeesMajority  = prometheus.NewDesc("vantage_cluster_sees_majority", "Whether this node sees a majority of the configured regions (only then may it decide down or page).", nil, nil)
	descCanary        = prometheus.NewDesc("vantage_canaries_ok", "Whether this node's canaries pass (0: its region abstains).", nil, nil)
	descOutbox        = prometheus.NewDesc("vantage_outbox_pending", "Notifications waiting in the outbox, by notifier.", []string{"notifier"}, nil)
	descStoreWritten  = prometheus.NewDesc("vantage_store_results_written_total", "Probe results committed to SQLite.", nil, nil)
	descStoreDropped  = prometheus.NewDesc("vantage_store_results_dropped_total", "Probe results dropped (queue full or store closed).", nil, nil)
	descStoreQueue    = prometheus.NewDesc("vantage_store_queue_depth", "Probe results accepted but not yet committed.", nil, nil)
	descStoreBatch    = prometheus.NewDesc("vantage_store_write_seconds", "Duration of the store's write transactions.", nil, nil)
	descGossipBytes   = prometheus.NewDesc("vantage_gossip_bytes_total", "Gossip bytes sent (out) and received (in): udp (probes, gossip, votes), tcp (joins, push-pull); encrypted, without IP/UDP/TCP headers.", []string{"direction", "transport"}, nil)
)

func newNodeMetrics() *nodeMetrics {
	m := &nodeMetrics{
		reg: prometheus.NewRegistry(),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vantage_notifications_total", Help: "Notification delivery attempts by notifier, action and outcome (delivered, retry, failed).",
		}, []string{"notifier", "action", "outcome"}),
		incidents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vantage_incidents_opened_total", Help: "Incidents opened, by check.",
		}, []string{"check"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vantage_probes_total", Help: "Probes run by this node, by check and result (ok or the error code).",
		}, []string{"check", "result"}),
	}
	m.reg.MustRegister(m.notifications, m.incidents, m.probes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *nodeMetrics) attempt(a notifier.Attempt) {
	outcome := "delivered"
	switch {
	case a.Err != nil && a.State == "pending":
		outcome = "retry"
	case a.Err != nil:
		outcome = "failed"
	}
	m.notifications.WithLabelValues(a.Notifier, string(a.Action), outcome).Inc()
}

func (m *nodeMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// nodeCollector reads gauges from the node at scrape time.
type nodeCollector struct{ n *node }

func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descProbeSuccess, descProbeDuration, descCheckState, descCheckUp, descRegionVote,
		descRegionElig, descMembers, descSeesMajority, descCanary, descOutbox, descStoreWritten, descStoreDropped,
		descStoreQueue, descStoreBatch, descGossipBytes} {
		ch <- d
	}
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	st := n.Status()
	for _, chk := range st.Checks {
		for _, s := range []string{"up", "down", "unknown", "maintenance"} {
			gauge(descCheckState, b2f(chk.State == s), chk.Name, s)
		}
		gauge(descCheckUp, b2f(chk.State != "down"), chk.Name)
		for region, rv := range chk.Regions {
			for _, v := range []string{"up", "down", "abstain"} {
				gauge(descRegionVote, b2f(rv.Vote == v), chk.Name, region, v)
			}
		}
	}
	for region, ri := range st.Cluster.Regions {
		gauge(descRegionElig, b2f(ri.Eligible), region)
	}
	members := map[string]float64{"alive": 0, "suspect": 0, "dead": 0, "left": 0}
	for _, m := range st.Cluster.Members {
		members[m.State]++
	}
	for s, v := range members {
		gauge(descMembers, v, s)
	}
	n.mu.Lock()
	view := n.viewLocked(n.params(&config.Check{}).Regions)
	region := n.opts.Region
	type own struct {
		name string
		ok   bool
		ph   [5]time.Duration
	}
	var owns []own
	for _, cs := range n.checks {
		if cs.have {
			r := cs.last
			owns = append(owns, own{cs.cfg.Name, r.OK, [5]time.Duration{r.Phases.DNS, r.Phases.Connect, r.Phases.TLS, r.Phases.FirstByte, r.Latency}})
		}
	}
	n.mu.Unlock()
	gauge(descSeesMajority, b2f(view.seesMajority))
	for _, o := range owns {
		gauge(descProbeSuccess, b2f(o.ok), o.name, region)
		for i, phase := range []string{"dns", "connect", "tls", "first_byte", "total"} {
			gauge(descProbeDuration, o.ph[i].Seconds(), o.name, region, phase)
		}
	}
	ok, _ := n.canary.Healthy()
	gauge(descCanary, b2f(ok))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if pending, err := n.outbox.Pending(ctx); err == nil {
		n.mu.Lock()
		notifiers := n.cfg.Notifiers
		n.mu.Unlock()
		for _, nc := range notifiers {
			gauge(descOutbox, float64(pending[nc.Name]), nc.Name)
		}
	}
	ss := n.store.Stats()
	ch <- prometheus.MustNewConstMetric(descStoreWritten, prometheus.CounterValue, float64(ss.ResultsWritten))
	ch <- prometheus.MustNewConstMetric(descStoreDropped, prometheus.CounterValue, float64(ss.Dropped))
	gauge(descStoreQueue, float64(ss.QueueDepth))
	buckets := map[float64]uint64{}
	var cum uint64
	for i, bound := range ss.BatchDurationBounds {
		if i < len(ss.BatchDurationCounts) {
			cum += ss.BatchDurationCounts[i]
		}
		buckets[bound.Seconds()] = cum
	}
	ch <- prometheus.MustNewConstHistogram(descStoreBatch, ss.Batches+ss.BatchErrors, ss.BatchDurationSum.Seconds(), buckets)
	if cl := n.cl.Load(); cl != nil {
		tr := cl.Traffic()
		for _, v := range []struct {
			dir, transport string
			bytes          uint64
		}{{"in", "udp", tr.UDPIn}, {"out", "udp", tr.UDPOut}, {"in", "tcp", tr.TCPIn}, {"out", "tcp", tr.TCPOut}} {
			ch <- prometheus.MustNewConstMetric(descGossipBytes, prometheus.CounterValue, float64(v.bytes), v.dir, v.transport)
		}
	}
}
