package agent

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"maps"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/l2agent/l2agent/checks"
	"github.com/l2agent/l2agent/internal/fsutil"
)

const namespace = "l2agent"

// Version is set at build time with -ldflags "-X github.com/l2agent/l2agent/agent.Version=…".
var Version = "dev"

type buildInfo struct {
	Version, Revision, GoVersion string
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: Version, GoVersion: runtime.Version(), Revision: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				b.Revision = s.Value
			}
		}
		if b.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
	}
	return b
}

// BuildVersion is the version string printed by `l2agent version`.
func BuildVersion() string {
	b := readBuildInfo()
	return "l2agent " + b.Version + " (revision " + b.Revision + ", " + b.GoVersion + ")"
}

type reloadMetrics struct {
	successful prometheus.Gauge
	timestamp  prometheus.Gauge
}

func (a *Agent) registerMetrics() {
	a.reload.successful = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "config_last_reload_successful",
		Help: "Whether the last configuration reload succeeded (1) or was rejected (0).",
	})
	a.reload.timestamp = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "config_last_reload_success_timestamp_seconds",
		Help: "Time of the last successful configuration load.",
	})
	a.reload.successful.Set(1)
	a.reload.timestamp.SetToCurrentTime()
	// Read at each scrape (it changes between check runs, unlike the
	// snapshot).
	readsStuck := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "file_reads_stuck",
		Help: "Reads of files users control (2FA enrolment files, home directories) abandoned at their timeout and still blocked in the kernel (a stalled FUSE or NFS file); at " + strconv.Itoa(fsutil.MaxStuck) + " more reads are refused until they return.",
	}, func() float64 { return float64(fsutil.Stuck()) })
	a.reg.MustRegister(
		collectors.NewGoCollector(),
		a.reload.successful, a.reload.timestamp, readsStuck,
	)
	a.snap.reg = prometheus.NewRegistry()
	a.snap.reg.MustRegister(&snapshotCollector{a: a})
	if self, err := newSelfCollector(); err == nil {
		a.reg.MustRegister(self)
	} else {
		a.log.Warn("no process_* metrics", "err", err)
	}
}

var (
	descBuildInfo = prometheus.NewDesc(namespace+"_build_info",
		"A metric with a constant '1' value labelled by version, revision and goversion.",
		[]string{"version", "revision", "goversion"}, nil)
	descDuration = prometheus.NewDesc(namespace+"_check_duration_seconds",
		"Duration of the last run of a check.", []string{"check"}, nil)
	descLastSuccess = prometheus.NewDesc(namespace+"_check_last_success_timestamp_seconds",
		"Time the last successful run of a check ended.", []string{"check"}, nil)
	descErrors = prometheus.NewDesc(namespace+"_check_errors_total",
		"Runs of a check that failed, timed out or panicked.", []string{"check"}, nil)
	descRuns = prometheus.NewDesc(namespace+"_check_runs_total",
		"Runs of a check.", []string{"check"}, nil)
	descSkipped = prometheus.NewDesc(namespace+"_check_skipped_total",
		"Scheduled runs of a check skipped because an earlier run was still going.", []string{"check"}, nil)
	descAbandoned = prometheus.NewDesc(namespace+"_check_runs_abandoned_total",
		"Runs of a check abandoned at their timeout because they ignored its cancellation; the next run starts afresh.", []string{"check"}, nil)
	descStuck = prometheus.NewDesc(namespace+"_check_runs_stuck",
		"Abandoned runs of a check that have not returned yet (goroutines still blocked).", []string{"check"}, nil)
	descChildRSS = prometheus.NewDesc(namespace+"_check_child_max_rss_bytes",
		"Largest peak resident set size of a program the last run of a check ran (apt-get, dnf, zypper, sshd -T…), with the programs it waited for; at least the agent's own peak RSS (Linux counts the memory a program was started from). Absent for a check that ran no program.", []string{"check"}, nil)
	descUp = prometheus.NewDesc(namespace+"_check_up",
		"Whether the last run of a check succeeded (1) or not (0).", []string{"check"}, nil)
)

// snapshotCollector exposes the latest results; a scrape never runs a check.
// Series of a check vanish when it stops reporting them (an unmounted disk).
type snapshotCollector struct {
	a *Agent

	mu    sync.Mutex
	descs map[string]*prometheus.Desc // metric name + label names → desc
}

// Describe sends nothing: the collector is unchecked, its series vary.
func (c *snapshotCollector) Describe(chan<- *prometheus.Desc) {}

func (c *snapshotCollector) desc(name, help string, labels []string) *prometheus.Desc {
	key := name
	for _, l := range labels {
		key += "\xff" + l
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.descs == nil {
		c.descs = map[string]*prometheus.Desc{}
	}
	d, ok := c.descs[key]
	if !ok {
		d = prometheus.NewDesc(name, help, labels, nil)
		c.descs[key] = d
	}
	return d
}

func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	ch <- prometheus.MustNewConstMetric(descBuildInfo, prometheus.GaugeValue, 1, a.build.Version, a.build.Revision, a.build.GoVersion)
	a.mu.RLock()
	runners := slices.Clone(a.runners)
	a.mu.RUnlock()
	for _, r := range runners {
		name := r.cfg.Name
		r.mu.RLock()
		if r.firstDone {
			ch <- prometheus.MustNewConstMetric(descDuration, prometheus.GaugeValue, r.duration.Seconds(), name)
			up := 0.0
			if r.lastErr == "" {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, name)
		}
		if !r.lastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastSuccess, prometheus.GaugeValue, float64(r.lastSuccess.UnixNano())/1e9, name)
		}
		ch <- prometheus.MustNewConstMetric(descRuns, prometheus.CounterValue, float64(r.runs), name)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(r.errors), name)
		ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.CounterValue, float64(r.skipped), name)
		ch <- prometheus.MustNewConstMetric(descAbandoned, prometheus.CounterValue, float64(r.abandoned), name)
		ch <- prometheus.MustNewConstMetric(descStuck, prometheus.GaugeValue, float64(r.stuck.Load()), name)
		if r.childMaxRSS > 0 {
			ch <- prometheus.MustNewConstMetric(descChildRSS, prometheus.GaugeValue, float64(r.childMaxRSS), name)
		}
		for _, o := range r.obs {
			c.observation(ch, o)
		}
		r.mu.RUnlock()
	}
	for _, al := range a.eval.Alerts() {
		labels := make([]string, 0, 2+len(al.Labels))
		values := make([]string, 0, 2+len(al.Labels))
		labels, values = append(labels, "check", "metric"), append(values, al.Check, al.Metric)
		for _, k := range slices.Sorted(maps.Keys(al.Labels)) {
			labels, values = append(labels, k), append(values, al.Labels[k])
		}
		d := c.desc(namespace+"_alert_state", "State of an alert key: -1 unknown, 0 ok, 1 pending, 2 warn, 3 crit. An empty metric label is the check run itself.", labels)
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, al.State.MetricValue(), values...)
		if al.ReportOnly != "" {
			d := c.desc(namespace+"_alert_report_only", "1 for an alert key its check reports for dashboards only (a policy the config does not require): it files no ticket. Absent for every other key.", labels)
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, 1, values...)
		}
	}
}

func (c *snapshotCollector) observation(ch chan<- prometheus.Metric, o checks.Observation) {
	keys := slices.Sorted(maps.Keys(o.Labels))
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = o.Labels[k]
	}
	typ := prometheus.GaugeValue
	if len(o.Metric) > 6 && o.Metric[len(o.Metric)-6:] == "_total" {
		typ = prometheus.CounterValue
	}
	d := c.desc(namespace+"_"+o.Metric, checks.Help(o.Metric), keys)
	m, err := prometheus.NewConstMetric(d, typ, o.Value, values...)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(d, err)
		return
	}
	ch <- m
}

// snapshotCache holds the exposition text of the check results. It changes
// only when a check run ends or the config is reloaded, so it is rendered
// then, once, instead of on every scrape: a scrape costs only the encoding of
// the Go runtime and process metrics, and allocates little (fewer GC pauses
// in the scrape latency tail).
type snapshotCache struct {
	reg *prometheus.Registry // only the snapshotCollector

	mu    sync.Mutex
	dirty bool
	text  []byte
	err   error
	// deflated is text compressed once as raw deflate blocks, ending with a
	// sync flush, for gzip scrapes (writeGzip); crc its CRC-32.
	deflated []byte
	crc      uint32
}

// invalidate marks the cached text stale; the next scrape renders it anew.
func (s *snapshotCache) invalidate() {
	s.mu.Lock()
	s.dirty = true
	s.mu.Unlock()
}

func (s *snapshotCache) get() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.getLocked()
}

func (s *snapshotCache) getLocked() ([]byte, error) {
	if !s.dirty && s.text != nil {
		return s.text, s.err
	}
	mfs, err := s.reg.Gather()
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, textFormat)
	for _, mf := range mfs {
		if encErr := enc.Encode(mf); encErr != nil && err == nil {
			err = encErr
		}
	}
	s.text, s.err, s.dirty = buf.Bytes(), err, false
	s.deflated, s.crc = nil, 0
	return s.text, s.err
}

// getDeflated returns the cached text, its deflate blocks (compressed once
// per change, not per scrape, with one of the shared compressors: a new one
// would allocate 1.2 MB each time) and its CRC-32. It fails only when ctx
// ends while it waits for a compressor.
func (s *snapshotCache) getDeflated(ctx context.Context) (text, deflated []byte, crc uint32, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	text, err = s.getLocked()
	if s.deflated == nil {
		var buf bytes.Buffer
		fw, gzErr := getGzip(ctx, &buf) // reset: the blocks refer only to themselves
		if gzErr != nil {
			return nil, nil, 0, gzErr
		}
		fw.Write(text)
		fw.Flush() // byte-aligned, not final: more blocks may follow
		putGzip(fw)
		s.deflated, s.crc = buf.Bytes(), crc32.ChecksumIEEE(text)
	}
	return text, s.deflated, s.crc, err
}

var textFormat = expfmt.NewFormat(expfmt.TypeTextPlain)

// gzipWriters bounds the compressors of concurrent gzip scrapes to
// maxGzipWriters and keeps them across GCs (a sync.Pool is emptied at every
// GC). One at BestSpeed allocates 1.2 MB of window and tables: eight
// concurrent scrapers each with its own were most of the agent's peak RSS.
// A scrape compresses into a buffer of its own (a few KiB) and gives its
// compressor back before it writes to the client, so a slow client holds
// none.
const maxGzipWriters = 2

var gzipWriters = func() chan *flate.Writer {
	c := make(chan *flate.Writer, maxGzipWriters)
	for range maxGzipWriters {
		c <- nil // made on first use
	}
	return c
}()

// getGzip waits for a free compressor, until ctx ends.
func getGzip(ctx context.Context, w io.Writer) (*flate.Writer, error) {
	select {
	case fw := <-gzipWriters:
		if fw == nil {
			fw, _ = flate.NewWriter(w, flate.BestSpeed)
			return fw, nil
		}
		fw.Reset(w)
		return fw, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func putGzip(fw *flate.Writer) {
	fw.Reset(io.Discard) // drop the reference to the buffer
	gzipWriters <- fw
}

// burstRelease returns the heap a burst of scrapes left to the OS once the
// scrapes stop: Go's scavenger would keep it for minutes, and the RSS after
// load is what a fleet pays for. A Prometheus scraping every few seconds is
// no burst: it never triggers it.
type burstRelease struct {
	mu    sync.Mutex
	n     int
	timer *time.Timer
}

const (
	burstQuiet   = 2 * time.Second // no scrape for this long ends a burst
	burstScrapes = 20              // scrapes within it that make one
)

func (b *burstRelease) scraped() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	if b.timer == nil {
		b.timer = time.AfterFunc(burstQuiet, b.quiet)
		return
	}
	b.timer.Reset(burstQuiet)
}

func (b *burstRelease) quiet() {
	b.mu.Lock()
	n := b.n
	b.n = 0
	b.mu.Unlock()
	if n >= burstScrapes {
		debug.FreeOSMemory()
	}
}

// Gatherer returns every metric the agent exposes (for tests and tools).
func (a *Agent) Gatherer() prometheus.Gatherer { return prometheus.Gatherers{a.reg, a.snap.reg} }

// serveMetrics writes the Prometheus text format: the live runtime and
// process metrics, then the cached snapshot of check results.
func (a *Agent) serveMetrics(w http.ResponseWriter, r *http.Request) {
	mfs, err := a.reg.Gather()
	if err != nil {
		a.log.Error("gather metrics", "err", err)
	}
	w.Header().Set("Content-Type", string(textFormat))
	defer a.burst.scraped()
	if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		snap, snapErr := a.snap.get()
		if snapErr != nil {
			a.log.Error("gather check metrics", "err", snapErr)
		}
		a.writeMetrics(w, mfs, snap)
		return
	}
	body, err := a.writeGzip(r.Context(), mfs)
	if err != nil {
		return // the client is gone
	}
	w.Header().Set("Content-Encoding", "gzip")
	w.Write(body)
}

// gzipHeader is a gzip member header: deflate, no name, no time, OS unknown.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

// writeGzip returns the gathered metrics then the cached snapshot as one
// gzip member. Only the live part (Go runtime, process) is compressed per
// scrape: it ends with a sync flush (byte-aligned), the snapshot's deflate
// blocks, compressed once when it changed and referring only to
// themselves, follow as they are, then an empty final block and the
// trailer (CRC-32 and size of the whole text). Clients see an ordinary
// gzip body (RFC 1951 §3.2.3, RFC 1952).
func (a *Agent) writeGzip(ctx context.Context, mfs []*dto.MetricFamily) ([]byte, error) {
	snap, deflated, _, snapErr := a.snap.getDeflated(ctx)
	switch {
	case ctx.Err() != nil:
		return nil, context.Cause(ctx)
	case snapErr != nil:
		a.log.Error("gather check metrics", "err", snapErr)
	}
	var buf bytes.Buffer
	buf.Grow(len(deflated) + 4096)
	buf.Write(gzipHeader)
	fw, err := getGzip(ctx, &buf)
	if err != nil {
		return nil, err
	}
	live := &crcCounter{w: fw}
	a.writeMetrics(live, mfs, nil)
	fw.Flush()
	putGzip(fw)
	buf.Write(deflated)
	buf.Write([]byte{0x03, 0x00}) // an empty final block (fixed Huffman: end of block)
	crc := crc32.Update(live.crc, crc32.IEEETable, snap)
	buf.Write(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, crc), uint32(live.n+len(snap))))
	return buf.Bytes(), nil
}

// crcCounter passes writes on, keeping their CRC-32 and length.
type crcCounter struct {
	w   io.Writer
	crc uint32
	n   int
}

func (c *crcCounter) Write(p []byte) (int, error) {
	c.crc = crc32.Update(c.crc, crc32.IEEETable, p)
	c.n += len(p)
	return c.w.Write(p)
}

// writeMetrics writes the gathered metrics, then the cached snapshot.
func (a *Agent) writeMetrics(out io.Writer, mfs []*dto.MetricFamily, snap []byte) bool {
	enc := expfmt.NewEncoder(out, textFormat)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			a.log.Debug("write metrics", "err", err)
			return false
		}
	}
	_, err := out.Write(snap)
	return err == nil
}
