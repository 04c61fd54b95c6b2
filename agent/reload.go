package agent

import (
	"context"
	"errors"
	"sync"
	"time"
)

// DefaultReloadInterval is the least time between the starts of two
// reloads asked for by SIGHUP or POST /-/reload (Options.ReloadInterval).
const DefaultReloadInterval = time.Second

// reloadGate coalesces and rate-limits reloads: requests that arrive
// before the next reload starts share it, and a reload starts at least the
// interval after the previous one. Every request is answered by a reload
// that read the config file after the request arrived.
type reloadGate struct {
	run  sync.Mutex // one reload at a time
	mu   sync.Mutex
	next *reloadCall // the reload waiting to start, shared by its requests
	last time.Time   // start of the last reload
}

// reloadCall is one reload and its outcome, for every request it answers.
type reloadCall struct {
	done chan struct{}
	err  error
}

// errStopping answers the reload requests still waiting when the agent stops.
var errStopping = errors.New("the agent is stopping; the config was not reloaded")

// RequestReload reloads the config as Reload does, coalesced and
// rate-limited: what SIGHUP and POST /-/reload use. It returns the outcome
// of the reload that answers the request, or ctx's error.
func (a *Agent) RequestReload(ctx context.Context) error {
	g := &a.reloads
	g.mu.Lock()
	c := g.next
	if c == nil {
		c = &reloadCall{done: make(chan struct{})}
		g.next = c
		go a.runReload(c)
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runReload waits for its turn and the interval, then reloads once for
// every request that joined c.
func (a *Agent) runReload(c *reloadCall) {
	g := &a.reloads
	defer close(c.done)
	g.run.Lock()
	defer g.run.Unlock()
	g.mu.Lock()
	wait := time.Until(g.last.Add(a.opts.reloadInterval()))
	g.mu.Unlock()
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-a.ctx.Done():
			g.mu.Lock()
			if g.next == c {
				g.next = nil
			}
			g.mu.Unlock()
			c.err = errStopping
			return
		}
	}
	g.mu.Lock()
	g.next = nil // requests from now on need a reload that reads the file after them
	g.last = time.Now()
	g.mu.Unlock()
	c.err = a.Reload()
}

// reloadInterval is the least time between two requested reloads.
func (o Options) reloadInterval() time.Duration {
	if o.ReloadInterval > 0 {
		return o.ReloadInterval
	}
	return DefaultReloadInterval
}
