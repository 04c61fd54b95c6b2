package ticketing

import "sync"

// Unused keeps, per alert key, the ticket a backend's Find met and could not
// use (closed, or resolved too long ago), so that the next Open can name
// it. Bounded: past 1000 keys (Find without Open, many times) it starts
// afresh. The zero value is ready to use.
type Unused[T any] struct {
	mu sync.Mutex
	m  map[string]T
}

// Remember keeps v for key; nil forgets key.
func (u *Unused[T]) Remember(key string, v *T) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if v == nil {
		delete(u.m, key)
		return
	}
	if u.m == nil || len(u.m) >= 1000 {
		u.m = map[string]T{}
	}
	u.m[key] = *v
}

// Take returns what was kept for key and forgets it.
func (u *Unused[T]) Take(key string) (T, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	v, ok := u.m[key]
	delete(u.m, key)
	return v, ok
}
