package node

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vantage-dev/vantage/config"
)

// metrics are the node's Prometheus metrics, on a registry of its own.
// Gauges are read at scrape time from the status read model (collector),
// so probes pay nothing for them; counters are incremented where events
// happen. The outbox registers its own (notifications, pending).
type metrics struct {
	reg       *prometheus.Registry
	incidents *prometheus.CounterVec
	probes    *prometheus.CounterVec
}

var (
	// This node's latest probe of each check, in blackbox_exporter's
	// vocabulary, so its dashboards and alert rules apply.
	descProbeSuccess   = prometheus.NewDesc("probe_success", "Whether this node's latest probe of the check succeeded (1) or not (0).", []string{"check", "region"}, nil)
	descProbeDuration  = prometheus.NewDesc("probe_duration_seconds", "Duration of this node's latest probe of the check.", []string{"check", "region"}, nil)
	descProbeHTTPPhase = prometheus.NewDesc("probe_http_duration_seconds", "Duration of this node's latest http probe of the check by phase (resolve, connect, tls, processing, transfer).", []string{"check", "region", "phase"}, nil)
	descProbeHTTPCode  = prometheus.NewDesc("probe_http_status_code", "HTTP status code of this node's latest http probe of the check (0: no response).", []string{"check", "region"}, nil)
	descProbeCert      = prometheus.NewDesc("probe_ssl_earliest_cert_expiry", "Earliest expiry of the certificates that matter (the verified chain; with verification off, those served) in this node's latest probe of the check, in unix seconds.", []string{"check", "region"}, nil)
	descProbeDNS       = prometheus.NewDesc("probe_dns_lookup_time_seconds", "DNS lookup time of this node's latest probe of the check.", []string{"check", "region"}, nil)
	descCheckState     = prometheus.NewDesc("vantage_check_state", "The check's cluster-wide state as this node sees it: 1 for the current state.", []string{"check", "state"}, nil)
	descCheckUp        = prometheus.NewDesc("vantage_check_up", "1 unless the check is down cluster-wide (unknown and maintenance count as up).", []string{"check"}, nil)
	descRegionVote     = prometheus.NewDesc("vantage_region_vote", "A region's vote on a check: 1 for the current vote (up, down, abstain).", []string{"check", "region", "vote"}, nil)
	descRegionElig     = prometheus.NewDesc("vantage_region_eligible", "Whether a configured region may vote (an alive node, canaries passing).", []string{"region"}, nil)
	descMembers        = prometheus.NewDesc("vantage_cluster_members", "Cluster members by state.", []string{"state"}, nil)
	descSeesMajority   = prometheus.NewDesc("vantage_cluster_sees_majority", "Whether this node sees a majority of the configured regions (only then may it decide down or page).", nil, nil)
	descCanary         = prometheus.NewDesc("vantage_canaries_ok", "Whether this node's canaries pass (0: its region abstains).", nil, nil)
	descStoreWritten   = prometheus.NewDesc("vantage_store_results_written_total", "Probe results committed to SQLite.", nil, nil)
	descStoreDropped   = prometheus.NewDesc("vantage_store_results_dropped_total", "Probe results dropped (queue full or store closed).", nil, nil)
	descStoreQueue     = prometheus.NewDesc("vantage_store_queue_depth", "Probe results accepted but not yet committed.", nil, nil)
	descStoreBatch     = prometheus.NewDesc("vantage_store_write_seconds", "Duration of the store's write transactions.", nil, nil)
	descGossipBytes    = prometheus.NewDesc("vantage_gossip_bytes_total", "Gossip bytes sent (out) and received (in): udp (probes, gossip, votes), tcp (joins, push-pull); encrypted, without IP/UDP/TCP headers.", []string{"direction", "transport"}, nil)
	descClockOffset    = prometheus.NewDesc("vantage_peer_clock_offset_seconds", "A peer's clock's estimated offset from this node's (positive: ahead), from its gossip's stamps.", []string{"node"}, nil)
	descGossipDropped  = prometheus.NewDesc("vantage_gossip_dropped_total", "Gossiped updates of a replicated table dropped because its delivery queue was full (push-pull repairs them).", []string{"table"}, nil)
)

func newMetrics(n *Node) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		incidents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vantage_incidents_opened_total", Help: "Incidents opened, by check.",
		}, []string{"check"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vantage_probes_total", Help: "Probes run by this node, by check and result (ok or the error code).",
		}, []string{"check", "result"}),
	}
	m.reg.MustRegister(m.incidents, m.probes, collector{n},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// collector reads gauges from the node at scrape time.
type collector struct{ n *Node }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descProbeSuccess, descProbeDuration, descProbeHTTPPhase, descProbeHTTPCode, descProbeCert,
		descProbeDNS, descCheckState, descCheckUp, descRegionVote,
		descRegionElig, descMembers, descSeesMajority, descCanary, descStoreWritten, descStoreDropped,
		descStoreQueue, descStoreBatch, descGossipBytes, descGossipDropped, descClockOffset} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	snap := n.status.get()
	st := snap.status
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
	gauge(descSeesMajority, b2f(snap.view.SeesMajority))
	region := n.o.Region
	for _, o := range snap.own {
		gauge(descProbeSuccess, b2f(o.ok), o.check, region)
		gauge(descProbeDuration, o.phases[4].Seconds(), o.check, region)
		gauge(descProbeDNS, o.phases[0].Seconds(), o.check, region)
		if o.typ == config.TypeHTTP {
			transfer := max(0, o.phases[4]-o.phases[0]-o.phases[1]-o.phases[2]-o.phases[3])
			for i, d := range []time.Duration{o.phases[0], o.phases[1], o.phases[2], o.phases[3], transfer} {
				gauge(descProbeHTTPPhase, d.Seconds(), o.check, region, []string{"resolve", "connect", "tls", "processing", "transfer"}[i])
			}
			gauge(descProbeHTTPCode, float64(o.statusCode), o.check, region)
		}
		if !o.certExpiry.IsZero() {
			gauge(descProbeCert, float64(o.certExpiry.Unix()), o.check, region)
		}
	}
	ok, _ := n.canary.Healthy()
	gauge(descCanary, b2f(ok))
	ss := n.store.Stats()
	counter(descStoreWritten, float64(ss.ResultsWritten))
	counter(descStoreDropped, float64(ss.Dropped))
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
			counter(descGossipBytes, float64(v.bytes), v.dir, v.transport)
		}
		for key, s := range cl.StateStats() {
			counter(descGossipDropped, float64(s.Dropped), key)
		}
		for _, m := range cl.Members() {
			if off, ok := cl.ClockOffset(m.Name); ok && m.Name != n.o.Name {
				gauge(descClockOffset, off.Seconds(), m.Name)
			}
		}
	}
}
