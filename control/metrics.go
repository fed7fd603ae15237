package control

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/faultline-proxy/faultline/proxy"
)

// The server's registry holds this collector and Go's runtime and process
// collectors (go_goroutines, go_memstats_*, process_open_fds,
// process_resident_memory_bytes, ...), so that a long run can be watched
// for leaks. Each server has its own registry: two in one process do not
// collide.

// collector reports every proxy's counters when Prometheus scrapes. Bytes
// come from the kernel's counts for live connections (see proxy.Conns), so
// a long transfer shows up while it runs; nothing is counted on the relay's
// hot path for it.
type collector struct{ s *Server }

var (
	descBytes = prometheus.NewDesc("faultline_bytes_total",
		"Bytes relayed, by proxy and direction (up: client to upstream).", []string{"proxy", "dir"}, nil)
	descOpen = prometheus.NewDesc("faultline_connections_open",
		"Client connections open now.", []string{"proxy"}, nil)
	descAccepted = prometheus.NewDesc("faultline_connections_accepted_total",
		"Client connections accepted.", []string{"proxy"}, nil)
	descEnabled = prometheus.NewDesc("faultline_proxy_enabled",
		"1 if the proxy is listening, 0 if disabled.", []string{"proxy"}, nil)
	descFaults = prometheus.NewDesc("faultline_faults_active",
		"Faults added to the proxy.", []string{"proxy"}, nil)
	descFired = prometheus.NewDesc("faultline_faults_fired_total",
		"Times a fault acted (fault-fired events), by fault name.", []string{"proxy", "fault"}, nil)
	descPoolConns = prometheus.NewDesc("faultline_pool_connections",
		"Upstream connections in the pool, by state (idle, busy).", []string{"proxy", "state"}, nil)
	descPoolDialed = prometheus.NewDesc("faultline_pool_dialed_total",
		"Upstream connections the pool opened.", []string{"proxy"}, nil)
	descPoolReused = prometheus.NewDesc("faultline_pool_reused_total",
		"Borrows served by an idle connection.", []string{"proxy"}, nil)
	descPoolRetried = prometheus.NewDesc("faultline_pool_retried_total",
		"Reused connections found dead before use and replaced.", []string{"proxy"}, nil)
	descPoolDiscarded = prometheus.NewDesc("faultline_pool_discarded_total",
		"Upstream connections closed instead of reused, by reason.", []string{"proxy", "reason"}, nil)
	descEvents = prometheus.NewDesc("faultline_events_logged_total",
		"Events appended to the control server's log.", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBytes, descOpen, descAccepted, descEnabled, descFaults, descFired,
		descPoolConns, descPoolDialed, descPoolReused, descPoolRetried, descPoolDiscarded, descEvents} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.Lock()
	es := c.s.entries()
	c.s.mu.Unlock()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, e := range es {
		e.mu.Lock()
		p, r, accepted, name, mode := e.p, e.retired, e.accepted, e.name, e.spec.Mode
		fired := make(map[string]uint64, len(e.fired))
		for k, v := range e.fired {
			fired[k] = v
		}
		discarded := make(map[proxy.Reason]uint64, len(r.discarded))
		for k, v := range r.discarded {
			discarded[k] = v
		}
		e.mu.Unlock()
		up, down := r.up, r.down
		var st proxy.PoolStats
		open, enabled := 0, 0.0
		if p != nil {
			u, d := p.Bytes()
			up, down = up+u, down+d
			st = p.PoolStats()
			open, enabled = p.ActiveConns(), 1
		}
		counter(descBytes, float64(up), name, "up")
		counter(descBytes, float64(down), name, "down")
		gauge(descOpen, float64(open), name)
		counter(descAccepted, float64(accepted), name)
		gauge(descEnabled, enabled, name)
		gauge(descFaults, float64(len(e.faults())), name)
		for f, n := range fired {
			counter(descFired, float64(n), name, f)
		}
		if mode != proxy.ModePool.String() {
			continue
		}
		gauge(descPoolConns, float64(st.Idle), name, "idle")
		gauge(descPoolConns, float64(st.Busy), name, "busy")
		counter(descPoolDialed, float64(r.dialed+st.Dialed), name)
		counter(descPoolReused, float64(r.reused+st.Reused), name)
		counter(descPoolRetried, float64(r.retried+st.Retried), name)
		for k, v := range st.Discarded {
			discarded[k] += v
		}
		for k, v := range discarded {
			counter(descPoolDiscarded, float64(v), name, string(k))
		}
	}
	counter(descEvents, float64(c.s.log.last()))
}
