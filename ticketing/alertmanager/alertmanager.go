// Package alertmanager is the fleet-mode ticket backend: instead of filing
// tickets it posts the agent's alerts to every Alertmanager of a cluster
// (POST /api/v2/alerts, as Prometheus does), and Alertmanager groups one
// problem across many hosts into one notification, deduplicates across its
// peers and routes by tier.
//
// An alert's identity in Alertmanager is its label set, so the backend keeps
// the firing alerts in memory and sends them again every resend_interval;
// each carries endsAt = now + 4 × resend_interval, so the alerts of an agent
// that dies resolve by themselves.
package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/rest"
	"github.com/l2agent/l2agent/internal/textfmt"
	"github.com/l2agent/l2agent/internal/version"
	"github.com/l2agent/l2agent/ticketing"
)

// Limits of what the backend sends.
const (
	MaxDescription = 4096 // bytes of the description annotation (the ticket body)
	MaxComment     = 1024
	maxBatch       = 500 // alerts per POST when re-sending
	maxRespBody    = 4096
)

// postableAlert is one element of the POST /api/v2/alerts body, Alertmanager's
// wire format; it is built from the ticket, as every backend's payload is.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     string            `json:"startsAt,omitempty"`
	EndsAt       string            `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// active is an alert the backend keeps firing.
type active struct {
	labels      map[string]string
	annotations map[string]string
	startsAt    time.Time
	ticket      ticketing.Ticket
}

// Backend posts alerts to every Alertmanager of a cluster.
type Backend struct {
	name     string
	urls     []string
	resend   time.Duration
	static   map[string]string
	user     string
	password string
	timeout  time.Duration // bounds each POST
	client   *http.Client
	log      *slog.Logger
	now      func() time.Time

	mu      sync.Mutex
	firing  map[string]*active // key → alert kept firing
	last    map[string]*active // key → last alert sent (also resolved ones), for Reopen
	partial int                // POSTs some Alertmanager refused while another accepted

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New returns an Alertmanager backend and starts its re-send loop; Close
// stops it.
func New(name string, o Options, timeout time.Duration) (*Backend, error) {
	if len(o.URLs) == 0 {
		return nil, fmt.Errorf("alertmanager backend %q: no urls", name)
	}
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	resend := o.ResendInterval.D()
	if resend <= 0 {
		resend = time.Minute
	}
	b := &Backend{name: name, resend: resend, static: maps.Clone(o.Labels), user: o.Username,
		timeout: timeout, client: &http.Client{}, log: slog.Default().With("backend", name, "kind", "alertmanager"),
		now: time.Now, firing: map[string]*active{}, last: map[string]*active{},
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, u := range o.URLs {
		b.urls = append(b.urls, strings.TrimRight(u, "/")+"/api/v2/alerts")
	}
	if o.Username != "" || o.Password.Ref != "" || o.PasswordFile != "" {
		v, err := configs.SecretValue(o.Password, o.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("alertmanager backend %q: password: %w", name, err)
		}
		b.password = strings.TrimSpace(v)
	}
	go b.loop()
	return b, nil
}

// Close stops the re-send loop. The alerts still firing expire in
// Alertmanager after 4 × resend_interval unless another agent sends them.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() { close(b.stop) })
	<-b.done
	return nil
}

// Active returns the number of alerts kept firing.
func (b *Backend) Active() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.firing)
}

// Partial returns how many POSTs were refused by some Alertmanager while
// another accepted them.
func (b *Backend) Partial() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.partial
}

func (b *Backend) loop() {
	defer close(b.done)
	t := time.NewTicker(b.resend)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			if err := b.Resend(context.Background()); err != nil {
				b.log.Warn("alertmanager re-send failed", "err", err)
			}
		}
	}
}

// Resend posts every firing alert again, in batches.
func (b *Backend) Resend(ctx context.Context) error {
	now := b.now()
	b.mu.Lock()
	alerts := make([]postableAlert, 0, len(b.firing))
	for _, a := range b.firing {
		alerts = append(alerts, b.alert(a, now, false))
	}
	b.mu.Unlock()
	var errs []error
	for len(alerts) > 0 {
		n := min(len(alerts), maxBatch)
		ctx, cancel := context.WithTimeout(ctx, b.timeout)
		if err := b.post(ctx, alerts[:n]); err != nil {
			errs = append(errs, err)
		}
		cancel()
		alerts = alerts[n:]
	}
	return errors.Join(errs...)
}

// alert renders a for the API: firing (endsAt = now + 4 × resend) or
// resolved (endsAt = now).
func (b *Backend) alert(a *active, now time.Time, resolved bool) postableAlert {
	end := now.Add(4 * b.resend)
	if resolved {
		end = now
	}
	return postableAlert{Labels: a.labels, Annotations: a.annotations,
		StartsAt: a.startsAt.UTC().Format(time.RFC3339), EndsAt: end.UTC().Format(time.RFC3339)}
}

// AlertName is the alertname label of t: "l2agent_" + the metric, or
// "l2agent_check" for a check without a metric (a check-run alert).
func AlertName(t ticketing.Ticket) string {
	if t.Metric == "" {
		return "l2agent_check"
	}
	return "l2agent_" + t.Metric
}

// build returns the alert of t at tier.
func (b *Backend) build(t ticketing.Ticket, tier ticketing.Tier, startsAt time.Time) *active {
	l := map[string]string{}
	maps.Copy(l, b.static)
	maps.Copy(l, t.Labels)
	host := t.Host
	if host == "" {
		host, _, _ = strings.Cut(t.Key, "/")
	}
	sev := t.Severity
	if sev == "" {
		sev = "warn"
	}
	for k, v := range map[string]string{"alertname": AlertName(t), "host": host, "check": t.Check, "metric": t.Metric,
		"severity": sev, "tier": tier.String()} {
		if v != "" {
			l[k] = v
		} else {
			delete(l, k)
		}
	}
	for k, v := range l {
		if v == "" { // an empty label is no label in Alertmanager
			delete(l, k)
		}
	}
	summary := t.Title
	if summary == "" {
		summary = t.Key
	}
	ann := map[string]string{"summary": summary, "key": t.Key}
	if t.Body != "" {
		ann["description"] = textfmt.TruncateMark(t.Body, MaxDescription, "…")
	}
	if t.RunbookURL != "" {
		ann["runbook_url"] = t.RunbookURL
	}
	if t.Flapping {
		ann["flapping"] = "true"
	}
	t.Tier = tier
	return &active{labels: l, annotations: ann, startsAt: startsAt, ticket: t}
}

// post sends alerts to every Alertmanager at once. It succeeds when at
// least one accepted them; the others' errors are logged. When all fail the
// error is Final if every one was final (the alerts are invalid), else
// Retryable.
func (b *Backend) post(ctx context.Context, alerts []postableAlert) error {
	body, err := json.Marshal(alerts)
	if err != nil {
		return ticketing.Final("encode", fmt.Errorf("alertmanager: encoding alerts: %w", err))
	}
	errs := make([]error, len(b.urls))
	var wg sync.WaitGroup
	for i, u := range b.urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.postOne(ctx, u, body)
		}()
	}
	wg.Wait()
	var failed []error
	final := true
	var after time.Duration
	for _, err := range errs {
		if err == nil {
			continue
		}
		failed = append(failed, err)
		_, retry, ra := ticketing.Classify(err)
		if retry {
			final = false
		}
		after = max(after, ra)
	}
	switch {
	case len(failed) == 0:
		return nil
	case len(failed) < len(b.urls):
		b.mu.Lock()
		b.partial++
		b.mu.Unlock()
		b.log.Warn("alertmanager refused alerts that another accepted", "failed", len(failed), "of", len(b.urls), "err", errors.Join(failed...))
		return nil
	}
	joined := errors.Join(failed...)
	if final {
		return ticketing.Final("http_4xx", fmt.Errorf("alertmanager: every Alertmanager refused the alerts: %w", joined))
	}
	reason, _, _ := ticketing.Classify(failed[0])
	return &ticketing.DeliveryError{Reason: reason, Retryable: true, RetryAfter: after,
		Err: fmt.Errorf("alertmanager: no Alertmanager accepted the alerts: %w", joined)}
}

// postOne posts body to one Alertmanager within the backend's timeout. The
// timeout is a context deadline, not http.Client.Timeout, which costs a
// goroutine and a timer more per request.
func (b *Backend) postOne(parent context.Context, u string, body []byte) error {
	ctx, cancel := context.WithTimeout(parent, b.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return ticketing.Final("config", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", version.UserAgent())
	if b.user != "" {
		req.SetBasicAuth(b.user, b.password)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return rest.TransportError(parent, fmt.Errorf("POST %s: %w", u, err)) // out of b.timeout: a retryable timeout
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, maxRespBody))
	if b.user != "" && resp.StatusCode/100 != 2 { // a proxy that echoes the request never gets the password quoted
		rb = rest.NewRedactor(rest.Basic(b.user, b.password)).Bytes(rb)
	}
	return rest.CheckStatus("POST "+u, resp.StatusCode, resp.Header, rb)
}

// known returns the last alert sent for key, or nil.
func (b *Backend) known(key string) *active {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a := b.firing[key]; a != nil {
		return a
	}
	return b.last[key]
}

func (b *Backend) remember(key string, a *active, firing bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last[key] = a
	if firing {
		b.firing[key] = a
	} else {
		delete(b.firing, key)
	}
}

// Find reports not found: Alertmanager deduplicates by label set, so a
// repeated Open is harmless.
func (b *Backend) Find(context.Context, string) (ticketing.Ref, bool, error) {
	return ticketing.Ref{}, false, nil
}

// Open fires the alert of t and keeps it firing. Ref.ID is the alert key.
func (b *Backend) Open(ctx context.Context, t ticketing.Ticket) (ticketing.Ref, error) {
	tier := t.Tier
	if tier < ticketing.L2 || tier > ticketing.L4 {
		tier = ticketing.L2
	}
	now := b.now()
	start := now
	b.mu.Lock()
	if old := b.firing[t.Key]; old != nil {
		start = old.startsAt // a retried Open keeps the same startsAt
	}
	b.mu.Unlock()
	a := b.build(t, tier, start)
	if err := b.post(ctx, []postableAlert{b.alert(a, now, false)}); err != nil {
		return ticketing.Ref{}, err
	}
	b.remember(t.Key, a, true)
	return ticketing.Ref{ID: t.Key}, nil
}

// Comment re-posts the firing alert with the text in the "comment"
// annotation (annotations do not change an alert's identity). A comment on
// an alert that is not firing does nothing.
func (b *Backend) Comment(ctx context.Context, r ticketing.Ref, text string) error {
	b.mu.Lock()
	cur := b.firing[r.ID]
	b.mu.Unlock()
	if cur == nil {
		return nil
	}
	a := *cur
	a.annotations = maps.Clone(cur.annotations)
	if text = strings.TrimSpace(text); text != "" {
		a.annotations["comment"] = textfmt.TruncateMark(text, MaxComment, "…")
	}
	if err := b.post(ctx, []postableAlert{b.alert(&a, b.now(), false)}); err != nil {
		return err
	}
	b.remember(r.ID, &a, true)
	return nil
}

// Escalate changes the tier label, which changes the alert's identity in
// Alertmanager: the old label set is resolved (endsAt = now) and the new
// one fired in the same POST, so the L3 route notifies and the L2 one sees
// a resolve.
func (b *Backend) Escalate(ctx context.Context, r ticketing.Ref, tier ticketing.Tier, t ticketing.Ticket) error {
	if tier < ticketing.L2 || tier > ticketing.L4 {
		tier = ticketing.L3
	}
	old := b.known(r.ID)
	if t.Key == "" {
		if old != nil {
			t = old.ticket
		} else {
			t.Key = r.ID
		}
	}
	now := b.now()
	a := b.build(t, tier, now)
	alerts := []postableAlert{}
	if old != nil && !maps.Equal(old.labels, a.labels) {
		alerts = append(alerts, b.alert(old, now, true))
	}
	alerts = append(alerts, b.alert(a, now, false))
	if err := b.post(ctx, alerts); err != nil {
		return err
	}
	b.remember(r.ID, a, true)
	return nil
}

// Resolve sends the alert with endsAt = now and stops re-sending it. An
// alert the backend does not know (lost with a restart) expires by itself.
func (b *Backend) Resolve(ctx context.Context, r ticketing.Ref, _ string) error {
	a := b.known(r.ID)
	if a == nil {
		b.log.Info("resolve of an unknown alert: it expires in Alertmanager by itself", "key", r.ID)
		return nil
	}
	if err := b.post(ctx, []postableAlert{b.alert(a, b.now(), true)}); err != nil {
		return err
	}
	b.remember(r.ID, a, false)
	return nil
}

// Reopen fires the alert again, at the tier it was last sent to. An alert
// the backend does not know is rebuilt from its key (host/check/…).
func (b *Backend) Reopen(ctx context.Context, r ticketing.Ref, text string) error {
	var t ticketing.Ticket
	if a := b.known(r.ID); a != nil {
		t = a.ticket
	} else {
		key := r.ID
		if e, ok := ticketing.EventFrom(ctx); ok && e.Key != "" {
			key = e.Key
		}
		parts := strings.SplitN(key, "/", 3)
		t = ticketing.Ticket{Key: key, Host: parts[0], Tier: ticketing.L2}
		if len(parts) > 1 {
			t.Check = parts[1]
		}
	}
	if text = strings.TrimSpace(text); text != "" {
		t.Body = text
	}
	now := b.now()
	a := b.build(t, t.Tier, now)
	if err := b.post(ctx, []postableAlert{b.alert(a, now, false)}); err != nil {
		return err
	}
	b.remember(r.ID, a, true)
	return nil
}
