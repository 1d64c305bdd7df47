package network

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/kiln-build/kiln/internal/rootless"
)

// ErrPortAllocated: a published host port is taken.
var ErrPortAllocated = errors.New("port is already allocated")

// udpIdle is how long a UDP flow through the proxy lives without traffic.
const udpIdle = 90 * time.Second

// Proxy serves a container's published ports from the host: it listens on
// each host address and port and forwards connections (TCP) and datagrams
// (UDP) to the container's address, as Docker's docker-proxy does. It runs
// in the container's monitor, which lives exactly as long as the container.
type Proxy struct {
	// Ports are the bindings as listened on: random host ports resolved.
	Ports PortMap

	mu       sync.Mutex
	tcp      []tcpListener
	udp      []udpListener
	closed   bool
	conns    map[io.Closer]bool
	wg       sync.WaitGroup
	serveOne sync.Once
	ns       *os.File // where the container's address is reached (nil: here)
}

type tcpListener struct {
	l    net.Listener
	port int
}

type udpListener struct {
	c    *net.UDPConn
	port int
}

// Listen binds every binding of ports (an empty HostIP is 0.0.0.0, an empty
// host port a random one). A taken port is an error wrapping
// ErrPortAllocated, and nothing stays bound.
//
// The proxy dials the container from the namespace of kiln's kernel state
// (see kernelNS): rootless, it listens on the host and connects from the
// rootless network namespace, so that a published port needs nothing of
// the user-mode network stack.
func Listen(ports PortMap) (*Proxy, error) {
	ns, err := kernelNS()
	if err != nil {
		return nil, err
	}
	p := &Proxy{Ports: PortMap{}, conns: map[io.Closer]bool{}, ns: ns}
	for _, key := range SortedPorts(ports) {
		cport, proto, err := SplitPort(key)
		if err != nil {
			p.Close()
			return nil, err
		}
		for _, b := range ports[key] {
			ip := b.HostIP
			if ip == "" {
				ip = "0.0.0.0"
			}
			hp := b.HostPort
			if hp == "" {
				hp = "0"
			}
			addr := net.JoinHostPort(ip, hp)
			var bound int
			switch proto {
			case "tcp":
				l, err := net.Listen("tcp", addr)
				if err != nil {
					p.Close()
					return nil, bindError(addr, err)
				}
				bound = l.Addr().(*net.TCPAddr).Port
				p.tcp = append(p.tcp, tcpListener{l, cport})
			case "udp":
				ua, err := net.ResolveUDPAddr("udp", addr)
				if err != nil {
					p.Close()
					return nil, bindError(addr, err)
				}
				c, err := net.ListenUDP("udp", ua)
				if err != nil {
					p.Close()
					return nil, bindError(addr, err)
				}
				bound = c.LocalAddr().(*net.UDPAddr).Port
				p.udp = append(p.udp, udpListener{c, cport})
			default:
				p.Close()
				return nil, fmt.Errorf("publish %s: protocol %s is not supported", key, proto)
			}
			p.Ports[key] = append(p.Ports[key], PortBinding{HostIP: ip, HostPort: strconv.Itoa(bound)})
		}
	}
	return p, nil
}

func bindError(addr string, err error) error {
	if errors.Is(err, errAddrInUse) {
		return fmt.Errorf("Bind for %s failed: %w", addr, ErrPortAllocated)
	}
	if errors.Is(err, errAccess) && rootless.Active() {
		if _, port, serr := net.SplitHostPort(addr); serr == nil {
			if n, cerr := strconv.Atoi(port); cerr == nil {
				return lowPortError(n, unprivilegedPortStart())
			}
		}
	}
	return fmt.Errorf("publish %s: %w", addr, err)
}

// Serve starts forwarding to the container address target (once).
func (p *Proxy) Serve(target netip.Addr) {
	p.serveOne.Do(func() {
		for _, l := range p.tcp {
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.serveTCP(l.l, netip.AddrPortFrom(target, uint16(l.port))) }()
		}
		for _, u := range p.udp {
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.serveUDP(u.c, netip.AddrPortFrom(target, uint16(u.port))) }()
		}
	})
}

// track remembers c to close it with the proxy; false if already closed.
func (p *Proxy) track(c io.Closer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *Proxy) untrack(c io.Closer) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) serveTCP(l net.Listener, to netip.AddrPort) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go p.forwardTCP(c.(*net.TCPConn), to)
	}
}

func (p *Proxy) forwardTCP(in *net.TCPConn, to netip.AddrPort) {
	defer in.Close()
	if !p.track(in) {
		return
	}
	defer p.untrack(in)
	out, err := dialIn(p.ns, func() (net.Conn, error) { return net.DialTimeout("tcp", to.String(), 10*time.Second) })
	if err != nil {
		return
	}
	defer out.Close()
	if !p.track(out) {
		return
	}
	defer p.untrack(out)
	done := make(chan struct{}, 2)
	pipe := func(dst, src *net.TCPConn) {
		_, _ = io.Copy(dst, src)
		_ = dst.CloseWrite()
		done <- struct{}{}
	}
	go pipe(out.(*net.TCPConn), in)
	go pipe(in, out.(*net.TCPConn))
	<-done
	<-done
}

// serveUDP relays datagrams: each client address gets its own socket to
// the container, whose replies go back to that client.
func (p *Proxy) serveUDP(c *net.UDPConn, to netip.AddrPort) {
	var mu sync.Mutex
	flows := map[netip.AddrPort]*net.UDPConn{}
	buf := make([]byte, 65535)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			mu.Lock()
			for _, f := range flows {
				f.Close()
			}
			mu.Unlock()
			return
		}
		mu.Lock()
		up := flows[from]
		if up == nil {
			var dc net.Conn
			dc, err = dialIn(p.ns, func() (net.Conn, error) { return net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to)) })
			if err != nil {
				mu.Unlock()
				continue
			}
			up = dc.(*net.UDPConn)
			flows[from] = up
			go func() {
				rbuf := make([]byte, 65535)
				for {
					_ = up.SetReadDeadline(time.Now().Add(udpIdle))
					m, err := up.Read(rbuf)
					if err != nil {
						break
					}
					_, _ = c.WriteToUDPAddrPort(rbuf[:m], from)
				}
				mu.Lock()
				delete(flows, from)
				mu.Unlock()
				up.Close()
			}()
		}
		mu.Unlock()
		_ = up.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = up.Write(buf[:n])
	}
}

// Close stops listening and ends every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	for _, l := range p.tcp {
		l.l.Close()
	}
	for _, u := range p.udp {
		u.c.Close()
	}
	p.wg.Wait()
	if p.ns != nil {
		p.ns.Close()
	}
	return nil
}
