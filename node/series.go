package node

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vantage-dev/vantage/cluster"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/mesh"
)

// History that converges: the node shares its buckets with its peers and
// keeps theirs (mesh.Series over the store's series), so that every node
// answers for every region. Only a node with gossip shares; the store
// keeps its own buckets either way.

// startSeries makes the node's series table, registers it with the
// cluster (before the cluster starts) and runs it.
func (n *Node) startSeries(cl *cluster.Cluster) error {
	o := mesh.SeriesOptions{Self: n.o.Name, Region: n.o.Region, Store: n.store, Now: n.now, Logger: n.log,
		Check: n.seriesChecks(), RegionOK: n.seriesRegion}
	if n.o.Gossip.Profile == cluster.ProfileLocal {
		// One machine (tests, the demo): share and repair within seconds.
		o.LiveEvery, o.Settle, o.WantRetry, o.AnswerRate = time.Second, 2*time.Second, 5*time.Second, 4<<20
	}
	s := mesh.NewSeries(o)
	if err := s.Register(cl); err != nil {
		return err
	}
	n.metrics.reg.MustRegister(seriesCollector{s})
	n.goRun(s.Run)
	return nil
}

// seriesChecks returns whether the node runs a check, by the config in
// force.
func (n *Node) seriesChecks() func(string) bool {
	type set struct {
		cfg *config.Config
		m   map[string]bool
	}
	var cur atomic.Pointer[set]
	return func(name string) bool {
		cfg := n.cfg.Load()
		s := cur.Load()
		if s == nil || s.cfg != cfg {
			s = &set{cfg, checkSet(cfg)}
			cur.Store(s)
		}
		return s.m[name]
	}
}

// seriesRegion reports whether a region may hold buckets: one of
// cluster.regions, or any when the list is empty.
func (n *Node) seriesRegion(r string) bool {
	rs := n.cfg.Load().Cluster.Regions
	return len(rs) == 0 || r == n.o.Region || slices.Contains(rs, r)
}

var (
	descSeriesBuckets = prometheus.NewDesc("vantage_series_buckets_total",
		"History buckets: own ones broadcast (live), sent in answers to peers' wants (answer), peers' received (received) and refused (refused).",
		[]string{"kind"}, nil)
	descSeriesBytes = prometheus.NewDesc("vantage_series_bytes_total",
		"Bytes of history messages broadcast: own buckets (live) and answers (answer), before gossip's framing and encryption.",
		[]string{"kind"}, nil)
	descSeriesWants = prometheus.NewDesc("vantage_series_wants_total",
		"Anti-entropy wants for history buckets this node sent (sent) and answered (answered).", []string{"kind"}, nil)
)

// seriesCollector exports the series table's counters.
type seriesCollector struct{ s *mesh.Series }

func (c seriesCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSeriesBuckets
	ch <- descSeriesBytes
	ch <- descSeriesWants
}

func (c seriesCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	for k, v := range map[string]uint64{"live": st.LiveBuckets, "answer": st.AnswerBuckets, "received": st.Received, "refused": st.Refused} {
		ch <- prometheus.MustNewConstMetric(descSeriesBuckets, prometheus.CounterValue, float64(v), k)
	}
	ch <- prometheus.MustNewConstMetric(descSeriesBytes, prometheus.CounterValue, float64(st.LiveBytes), "live")
	ch <- prometheus.MustNewConstMetric(descSeriesBytes, prometheus.CounterValue, float64(st.AnswerBytes), "answer")
	ch <- prometheus.MustNewConstMetric(descSeriesWants, prometheus.CounterValue, float64(st.WantsSent), "sent")
	ch <- prometheus.MustNewConstMetric(descSeriesWants, prometheus.CounterValue, float64(st.WantsAnswered), "answered")
}
