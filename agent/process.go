package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

// selfCollector exposes the standard process_* metrics of the agent itself
// from one read of /proc/self/stat and /proc/self/fd per scrape. The
// client_golang process collector also reads /proc/stat, limits, io and
// netstat on every scrape, which was a third of a scrape's cost; the values
// it adds either never change (start time, fd limit: read once here) or are
// not needed to judge the agent's footprint.
type selfCollector struct {
	proc      procfs.Proc
	startTime float64
	maxFDs    float64
}

var (
	descCPU    = prometheus.NewDesc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", nil, nil)
	descRSS    = prometheus.NewDesc("process_resident_memory_bytes", "Resident memory size in bytes.", nil, nil)
	descVSize  = prometheus.NewDesc("process_virtual_memory_bytes", "Virtual memory size in bytes.", nil, nil)
	descStart  = prometheus.NewDesc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", nil, nil)
	descFDs    = prometheus.NewDesc("process_open_fds", "Number of open file descriptors.", nil, nil)
	descMaxFDs = prometheus.NewDesc("process_max_fds", "Maximum number of open file descriptors.", nil, nil)
)

func newSelfCollector() (prometheus.Collector, error) {
	p, err := procfs.Self()
	if err != nil {
		return nil, err
	}
	c := &selfCollector{proc: p}
	if st, err := p.Stat(); err == nil {
		c.startTime, _ = st.StartTime()
	}
	if l, err := p.Limits(); err == nil {
		c.maxFDs = float64(l.OpenFiles)
	}
	return c, nil
}

func (c *selfCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCPU, descRSS, descVSize, descStart, descFDs, descMaxFDs} {
		ch <- d
	}
}

func (c *selfCollector) Collect(ch chan<- prometheus.Metric) {
	if st, err := c.proc.Stat(); err == nil {
		ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, st.CPUTime())
		ch <- prometheus.MustNewConstMetric(descRSS, prometheus.GaugeValue, float64(st.ResidentMemory()))
		ch <- prometheus.MustNewConstMetric(descVSize, prometheus.GaugeValue, float64(st.VirtualMemory()))
	} else {
		ch <- prometheus.NewInvalidMetric(descCPU, err)
	}
	if n, err := c.proc.FileDescriptorsLen(); err == nil {
		ch <- prometheus.MustNewConstMetric(descFDs, prometheus.GaugeValue, float64(n))
	}
	if c.startTime > 0 {
		ch <- prometheus.MustNewConstMetric(descStart, prometheus.GaugeValue, c.startTime)
	}
	if c.maxFDs > 0 {
		ch <- prometheus.MustNewConstMetric(descMaxFDs, prometheus.GaugeValue, c.maxFDs)
	}
}
