// Package natstest runs a throwaway JetStream cluster for a test: n
// nats-server instances in this process (nats-server/v2 as a library),
// client and route listeners on free loopback ports, each store in its own
// temporary folder. A node can be stopped and started again on the same
// ports and store, as an operator would restart a failed machine.
package natstest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxPayload is the largest message the test servers accept: room for a
// forwarded 1 MiB request body with its headers.
const MaxPayload = 8 << 20

// Cluster is a running test cluster.
type Cluster struct {
	// URL lists every node's client URL, comma-separated, as a client
	// connects to a cluster.
	URL string

	tb    testing.TB
	mu    sync.Mutex
	opts  []*server.Options
	nodes []*server.Server // nil while stopped
}

// Start runs an n-node JetStream cluster, stopped at cleanup, and returns
// once JetStream answers (a meta leader is elected).
func Start(tb testing.TB, n int) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb}
	ports := freePorts(tb, 2*n)
	clientPorts, routePorts := ports[:n], ports[n:]
	var routes []*url.URL
	for _, p := range routePorts {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	urls := make([]string, n)
	for i := range n {
		c.opts = append(c.opts, &server.Options{
			ServerName: NodeName(i), Host: "127.0.0.1", Port: clientPorts[i],
			JetStream: true, StoreDir: tb.TempDir(), NoSigs: true, NoLog: true, MaxPayload: MaxPayload,
			Cluster: server.ClusterOpts{Name: "hmp-test", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:  routes,
		})
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i])
	}
	c.URL = strings.Join(urls, ",")
	c.nodes = make([]*server.Server, n)
	tb.Cleanup(c.stopAll)
	for i := range n {
		c.Restart(i)
	}
	c.WaitReady()
	return c
}

// NodeName is the server name of node i.
func NodeName(i int) string { return fmt.Sprintf("hmp-test-%d", i) }

// Size is the number of nodes.
func (c *Cluster) Size() int { return len(c.opts) }

// Stop shuts node i down (its clients are disconnected and move to the
// other nodes). Safe to call on a stopped node.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	ns := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if ns != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// Restart starts node i again on its ports and store (a no-op when it
// runs).
func (c *Cluster) Restart(i int) {
	c.tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nodes[i] != nil {
		return
	}
	opts := *c.opts[i]
	ns, err := server.NewServer(&opts)
	if err != nil {
		c.tb.Fatalf("nats node %d: %v", i, err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		c.tb.Fatalf("nats node %d did not accept connections in 30s", i)
	}
	c.nodes[i] = ns
}

// WaitReady waits until JetStream answers through the running nodes and
// the cluster has a meta leader.
func (c *Cluster) WaitReady() {
	c.tb.Helper()
	nc, err := nats.Connect(c.URL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		c.tb.Fatalf("connect to the test cluster: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		c.tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(actx)
		acancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			c.tb.Fatalf("the test cluster's JetStream did not answer in 60s: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) stopAll() {
	for i := range c.nodes {
		c.Stop(i)
	}
}

// freePorts returns n distinct free loopback ports (held open together so
// that none repeats).
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ports := make([]int, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// StartServer runs one stand-alone JetStream server (no cluster), stopped
// at cleanup, and returns its client URL: what a test of one bucket or
// stream needs.
func StartServer(tb testing.TB) string {
	tb.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: tb.TempDir(),
		NoSigs: true, NoLog: true, MaxPayload: MaxPayload})
	if err != nil {
		tb.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		tb.Fatal("nats server not ready in 30s")
	}
	tb.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns.ClientURL()
}
