// Command idleconns opens keep-alive connections to a proxy, sends one GET
// on each and reads its answer, then holds them all idle until its input
// closes. bench/proxy/idle.sh measures the proxy's memory meanwhile.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:19001", "proxy address")
	host := flag.String("host", "bench.localhost", "Host of the requests")
	n := flag.Int("n", 2000, "connections")
	flag.Parse()
	conns := make([]net.Conn, 0, *n)
	for range *n {
		c, err := net.Dial("tcp", *addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "idleconns:", err)
			os.Exit(1)
		}
		if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", *host); err != nil {
			fmt.Fprintln(os.Stderr, "idleconns:", err)
			os.Exit(1)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			fmt.Fprintln(os.Stderr, "idleconns: answer:", err)
			os.Exit(1)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		conns = append(conns, c)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}
