package alertmanager

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/l2agent/l2agent/configs"
)

// BenchmarkOpen is the backend's cost of one alert fired to a 2-node
// cluster (two servers answering 200 as Alertmanager does, on kept-alive
// connections; their handlers' cost is in the figure too). The fleet
// benchmark (TestRealFleetBench) measures the whole agent against real
// Alertmanagers.
func BenchmarkOpen(b *testing.B) {
	var urls []string
	for range 2 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
		}))
		b.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	be, err := New("am", Options{URLs: urls, ResendInterval: configs.Duration(time.Minute)}, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = be.Close() })
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := be.Open(ctx, ticket(fmt.Sprintf("host-%d", i))); err != nil {
			b.Fatal(err)
		}
	}
}
