// Command hop is the yardstick of the gateway load run (bench/gateway.sh):
// a bare httputil.ReverseProxy in front of the mock upstream, with nothing
// else. The gateway's figures are reported as shares of this hop's.
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7482", "listen address")
	upstream := flag.String("upstream", "http://127.0.0.1:7481", "mock upstream")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil {
		log.Fatal(err)
	}
	// The default transport keeps 2 idle connections per host and would
	// open new ones under load; the same pool as the gateway's keeps the
	// comparison fair.
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 512, 256
	p := httputil.NewSingleHostReverseProxy(u)
	p.Transport = t
	log.Fatal(http.ListenAndServe(*addr, p))
}
