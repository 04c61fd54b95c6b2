// Command floor is the least a Go exporter costs: a bare client_golang
// process serving its Go runtime and process metrics on /metrics with
// promhttp, as every Go exporter does, and nothing else. deploy/testenv/bench.sh
// runs it (with GOMAXPROCS=1) beside l2agent as the floor of what a scrape,
// an idle minute and a resident set cost.
//
//	go run ./deploy/testenv/floor -listen 127.0.0.1:PORT
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve /metrics on")
	flag.Parse()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
