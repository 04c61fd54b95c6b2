// Command scrape measures how an exporter answers /metrics, for
// deploy/testenv/bench.sh: sequential scrapes on one kept-alive connection
// (latency percentiles), or concurrent scrapers for a while (scrapes per
// second). Each request carries Prometheus' Accept and Accept-Encoding
// headers and reads the whole body. It prints one line of key=value pairs;
// nothing is asserted.
//
//	scrape -url URL -n 500              # sequential: n, errors, p50_ms, p99_ms, max_ms
//	scrape -url URL -c 8 -d 20s         # concurrent: n, errors, per_second
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// accept is what Prometheus 2.x sends.
const accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

func main() {
	url := flag.String("url", "", "URL to scrape")
	n := flag.Int("n", 0, "sequential scrapes")
	c := flag.Int("c", 0, "concurrent scrapers (with -d)")
	d := flag.Duration("d", 20*time.Second, "how long the concurrent scrapers run")
	flag.Parse()
	if *url == "" || (*n > 0) == (*c > 0) {
		fmt.Fprintln(os.Stderr, "usage: scrape -url URL (-n N | -c C -d DURATION)")
		os.Exit(2)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableCompression: true, MaxIdleConnsPerHost: max(*c, 1),
	}}
	if *n > 0 {
		sequential(client, *url, *n)
		return
	}
	concurrent(client, *url, *c, *d)
}

func scrapeOnce(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

func sequential(client *http.Client, url string, n int) {
	times := make([]time.Duration, 0, n)
	errs := 0
	for range n {
		start := time.Now()
		if err := scrapeOnce(context.Background(), client, url); err != nil {
			errs++
			continue
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	fmt.Printf("n=%d errors=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", n, errs, pct(times, 0.50), pct(times, 0.99), pct(times, 1))
}

// pct is the nearest-rank percentile of sorted times, in milliseconds.
func pct(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	r := int(q*float64(len(sorted)) + 0.999999)
	r = min(max(r, 1), len(sorted))
	return float64(sorted[r-1]) / float64(time.Millisecond)
}

func concurrent(client *http.Client, url string, c int, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var ok, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := scrapeOnce(ctx, client, url); err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	fmt.Printf("n=%d errors=%d per_second=%.0f\n", ok.Load(), errs.Load(), float64(ok.Load())/el)
}
