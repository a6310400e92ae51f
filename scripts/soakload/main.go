// soakload: the soak and fault run of scripts/soak (see its --help and BENCHMARKS.md's "Soak and faults").
//
// It starts `warden serve` with gRPC over TLS on 127.0.0.1, saturates envoy.service.auth.v3.Authorization/Check
// with many concurrent streams over a few HTTP/2 connections and checks every answer against the known decision
// of its request, while the policies directory is rewritten every second (write-then-rename) between two good
// revisions that answer alike and bad ones that must be refused; it samples the server's RSS. Then, under load, it
// kills the server with SIGKILL twice (with the last good revision on disk, and with a bad file next to it) and
// restarts it on the same directory and persistence directory: the second restart serves the persisted last good set.
//
// Only Go's standard library: net/http speaks HTTP/2 over TLS with trailers, which is all gRPC needs here.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	wardenPath   = flag.String("warden", "", "the warden binary")
	duration     = flag.Duration("duration", 10*time.Minute, "how long the soak phase runs")
	conns        = flag.Int("conns", 4, "HTTP/2 connections")
	streams      = flag.Int("streams", 32, "concurrent streams (closed-loop callers) per connection")
	reloadEvery  = flag.Duration("reload", time.Second, "how often the policies directory is rewritten")
	watchMS      = flag.Int("watch-interval-ms", 200, "the server's --watch-interval-ms")
	maxGrowth    = flag.Float64("max-rss-growth", 0.10, "largest allowed growth of RSS, last window over first")
	workDir      = flag.String("work", "", "working directory (default: a new temporary one, removed unless -keep)")
	keep         = flag.Bool("keep", false, "keep the working directory (server log, policies, certificates)")
	serverThread = flag.Int("threads", 0, "the server's --threads (0: its default)")
)

// Counts of one phase.
type counts struct {
	sent, allowed, denied, wrong, unsafe, failed, unavailable atomic.Int64
	mu                                                        sync.Mutex
	samples                                                   []string // the first wrong answers and errors
}

func (c *counts) note(s string) {
	c.mu.Lock()
	for _, seen := range c.samples {
		if seen == s {
			c.mu.Unlock()
			return
		}
	}
	if len(c.samples) < 6 {
		c.samples = append(c.samples, s)
	}
	c.mu.Unlock()
}

func (c *counts) String() string {
	return fmt.Sprintf("%d checks: %d allowed, %d denied, %d wrong (%d allowed that should be denied), %d failed, %d unavailable",
		c.sent.Load(), c.allowed.Load(), c.denied.Load(), c.wrong.Load(), c.unsafe.Load(), c.failed.Load(), c.unavailable.Load())
}

type phase struct {
	name string
	counts
}

var current atomic.Pointer[phase]

func begin(name string) *phase {
	p := &phase{name: name}
	current.Store(p)
	return p
}

func main() {
	flag.Parse()
	if *wardenPath == "" {
		fail("-warden is required")
	}
	dir := *workDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "warden-soak-"); err != nil {
			fail(err.Error())
		}
	}
	code := run(dir)
	if !*keep && *workDir == "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// The server, killed on the way out however the run ends.
var running atomic.Pointer[server]

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "soak: "+msg)
	if s := running.Load(); s != nil {
		s.kill()
	}
	os.Exit(2)
}

func logf(format string, args ...any) {
	fmt.Printf("[%s] %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(dir string) int {
	policies := filepath.Join(dir, "policies")
	must(os.MkdirAll(policies, 0o755))
	must(writeRevision(policies, revisionA, true))

	// A CA and a server certificate for the gRPC listener's TLS.
	ca, certs := filepath.Join(dir, "ca"), filepath.Join(dir, "certs")
	for _, args := range [][]string{
		{"ca", "init", "--dir", ca, "--trust-domain", "cluster.local"},
		{"ca", "issue", "--dir", ca, "--spiffe", "spiffe://cluster.local/ns/warden/sa/warden", "--dns", "localhost", "--out", certs},
	} {
		if out, err := exec.Command(*wardenPath, args...).CombinedOutput(); err != nil {
			fail(fmt.Sprintf("warden %s: %v\n%s", strings.Join(args, " "), err, out))
		}
	}
	srv := &server{dir: dir, policies: policies, certs: certs, grpc: freePort(), http: freePort(), admin: freePort()}
	running.Store(srv)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		fail("interrupted")
	}()
	if err := srv.start(); err != nil {
		fail(err.Error())
	}
	defer srv.kill()

	pool := x509.NewCertPool()
	root, err := os.ReadFile(filepath.Join(certs, "root-cert.pem"))
	if err != nil || !pool.AppendCertsFromPEM(root) {
		fail("cannot read the root certificate")
	}
	tlsConfig := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	frames := make([][]byte, len(mix))
	for i, c := range mix {
		frames[i] = c.frame(i)
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/envoy.service.auth.v3.Authorization/Check", srv.grpc)

	// The load: closed-loop callers, each on one of -conns transports (one HTTP/2 connection each).
	soak := begin("soak")
	stop := make(chan struct{})
	var callers sync.WaitGroup
	for c := 0; c < *conns; c++ {
		transport := &http.Transport{TLSClientConfig: tlsConfig.Clone(), ForceAttemptHTTP2: true, MaxConnsPerHost: 1,
			DialContext: (&net.Dialer{Timeout: time.Second}).DialContext, TLSHandshakeTimeout: 2 * time.Second}
		client := &http.Client{Transport: transport, Timeout: 5 * time.Second}
		for s := 0; s < *streams; s++ {
			callers.Add(1)
			go func(seed int) {
				defer callers.Done()
				for i := seed; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if !call(client, url, i%len(mix), frames[i%len(mix)]) {
						time.Sleep(20 * time.Millisecond) // a dead server: do not spin
					}
				}
			}(c**streams + s)
		}
	}

	// The policy rewrites and the RSS samples.
	rewrites := &rewriter{dir: policies}
	stopRewrites := make(chan struct{})
	rewritesDone := make(chan struct{})
	go func() { rewrites.run(stopRewrites); close(rewritesDone) }()
	sampleEvery := *duration / 60
	if sampleEvery < time.Second {
		sampleEvery = time.Second
	} else if sampleEvery > 5*time.Second {
		sampleEvery = 5 * time.Second
	}
	var rss []sample
	serverCPU0, clientCPU0, stall0 := srv.cpu(), clientCPU(), memoryStall()
	start := time.Now()
	logf("soak: %s, %d connections x %d streams, policies rewritten every %s, RSS every %s (server pid %d)",
		*duration, *conns, *streams, *reloadEvery, sampleEvery, srv.cmd.Process.Pid)
	lastReport := start
	for left := *duration; left > 0; left = *duration - time.Since(start) {
		if left < sampleEvery {
			time.Sleep(left)
		} else {
			time.Sleep(sampleEvery)
		}
		if kb, err := srv.rss(); err == nil {
			rss = append(rss, sample{time.Since(start), kb, srv.openFiles()})
		} else {
			soak.note("server gone: " + err.Error())
			soak.failed.Add(1)
			break
		}
		if time.Since(lastReport) >= time.Minute {
			lastReport = time.Now()
			logf("  %s: %s; RSS %d MiB", time.Since(start).Round(time.Second), soak.String(), rss[len(rss)-1].kb/1024)
		}
	}
	elapsed := time.Since(start)
	serverCPU, clientCPU, stall := srv.cpu()-serverCPU0, clientCPU()-clientCPU0, memoryStall()-stall0
	close(stopRewrites)
	<-rewritesDone
	status, _ := srv.status()
	logf("soak done: %s", soak.String())

	// Faults: SIGKILL under load with the last good revision on disk, then with a bad file next to it.
	faults, problems, complete := faultPhases(srv, policies)
	close(stop)
	callers.Wait()

	// The summary and the floors.
	ok := true
	floor := func(pass bool, format string, args ...any) {
		mark := "ok  "
		if !pass {
			mark, ok = "FAIL", false
		}
		fmt.Printf("  %s %s\n", mark, fmt.Sprintf(format, args...))
	}
	fmt.Println()
	fmt.Println("Summary")
	fmt.Printf("  soak: %s in %s (%.0f checks/s)\n", soak.String(), elapsed.Round(time.Second),
		float64(soak.sent.Load())/elapsed.Seconds())
	for _, s := range soak.samples {
		fmt.Println("    " + s)
	}
	fmt.Printf("  CPU: server %.0f s (%.2f cores, %.0f µs/check), load client %.0f s (%.2f cores)\n",
		serverCPU.Seconds(), serverCPU.Seconds()/elapsed.Seconds(), float64(serverCPU.Microseconds())/float64(soak.sent.Load()),
		clientCPU.Seconds(), clientCPU.Seconds()/elapsed.Seconds())
	if stall >= 0 {
		fmt.Printf("  the machine: every task stalled on memory for %.1f s of the soak (PSI, /proc/pressure/memory \"full\")\n",
			stall.Seconds())
	}
	fmt.Printf("  policy rewrites: %d good, %d bad; server: %d reloads, %d refused\n",
		rewrites.good, rewrites.bad, status.Reloads, status.Failures)
	summary := summarize(rss, *duration)
	fmt.Printf("  RSS: first %d MiB, last %d MiB, after warm-up (%s) min %d MiB max %d MiB; first window median %d MiB, last window median %d MiB (%+.1f %%)\n",
		summary.first/1024, summary.last/1024, summary.warmup, summary.min/1024, summary.max/1024,
		summary.firstWindow/1024, summary.lastWindow/1024, summary.growth*100)
	if len(rss) > 0 {
		fmt.Printf("  open files: %d at the first sample, %d at the last\n", rss[0].files, rss[len(rss)-1].files)
	}
	for _, f := range faults {
		fmt.Printf("  %s: %s\n", f.name, f.String())
		for _, s := range f.samples {
			fmt.Println("    " + s)
		}
	}
	floor(soak.wrong.Load() == 0, "soak: no wrong check")
	floor(soak.failed.Load() == 0 && soak.unavailable.Load() == 0, "soak: no failed check")
	floor(rewrites.good > 0 && status.Reloads >= 1, "soak: policies reloaded")
	floor(summary.growth <= *maxGrowth, "soak: RSS growth %+.1f %% within %.0f %%", summary.growth*100, *maxGrowth*100)
	for _, p := range problems {
		floor(false, "%s", p)
	}
	floor(complete, "faults: the server killed and restarted twice")
	for _, f := range faults {
		switch {
		case f.kind == restarted:
			floor(f.wrong.Load() == 0 && f.failed.Load() == 0 && f.unavailable.Load() == 0 && f.sent.Load() > 0,
				"%s: every answer as expected", f.name)
		case f.kind == restartedBad:
			floor(f.unsafe.Load() == 0 && f.failed.Load() == 0 && f.sent.Load() > 0, "%s: no allow that should be denied", f.name)
			floor(f.wrong.Load() == 0 && f.unavailable.Load() == 0,
				"%s: served the last good set (%d wrong, %d UNAVAILABLE)", f.name, f.wrong.Load(), f.unavailable.Load())
		default:
			floor(f.unsafe.Load() == 0, "%s: no allow that should be denied", f.name)
		}
	}
	if !ok {
		fmt.Println("soak: FAILED")
		return 1
	}
	fmt.Println("soak: passed")
	return 0
}

// One check: sends it, reads the answer, counts it in the current phase. False when the server did not answer.
func call(client *http.Client, url string, which int, frame []byte) bool {
	p := current.Load()
	p.sent.Add(1)
	c := mix[which]
	req, _ := http.NewRequest("POST", url, bytes.NewReader(frame))
	req.Header.Set("content-type", "application/grpc")
	req.Header.Set("te", "trailers")
	req.Header.Set("grpc-timeout", "4S")
	resp, err := client.Do(req)
	if err != nil {
		p.failed.Add(1)
		p.note("error: " + err.Error())
		return false
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		p.failed.Add(1)
		p.note("error reading the answer: " + err.Error())
		return false
	}
	grpcStatus := resp.Trailer.Get("grpc-status")
	if grpcStatus == "" {
		grpcStatus = resp.Header.Get("grpc-status") // a trailers-only answer
	}
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || grpcStatus != "0" {
		p.failed.Add(1)
		p.note(fmt.Sprintf("%s: %s %d, grpc-status %q %s", c.name, resp.Proto, resp.StatusCode, grpcStatus,
			resp.Trailer.Get("grpc-message")))
		return true
	}
	a, err := parseCheckResponse(body)
	if err != nil {
		p.failed.Add(1)
		p.note(c.name + ": " + err.Error())
		return true
	}
	switch {
	case a.code == 14:
		p.unavailable.Add(1)
		if c.allow {
			p.note(c.name + ": UNAVAILABLE (no policy set)")
		}
	case a.code == 0:
		p.allowed.Add(1)
		if !c.allow {
			p.wrong.Add(1)
			p.unsafe.Add(1)
			p.note(c.name + ": ALLOWED, expected a denial (" + c.reason + ")")
		}
	case a.code == 7:
		p.denied.Add(1)
		if c.allow || a.reason != c.reason {
			p.wrong.Add(1)
			p.note(fmt.Sprintf("%s: denied (%s), expected %s", c.name, a.reason, expectation(c)))
		}
	default:
		p.wrong.Add(1)
		p.note(fmt.Sprintf("%s: status code %d, expected %s", c.name, a.code, expectation(c)))
	}
	return true
}

func expectation(c check) string {
	if c.allow {
		return "an allow"
	}
	return "a denial (" + c.reason + ")"
}

// The warden process.
type server struct {
	dir, policies, certs string
	grpc, http, admin    int
	cmd                  *exec.Cmd
	exited               chan struct{}
	log                  *os.File
	starts               int
}

func (s *server) start() error {
	if s.log == nil {
		var err error
		if s.log, err = os.Create(filepath.Join(s.dir, "server.log")); err != nil {
			return err
		}
	}
	args := []string{"serve", "--policies", s.policies,
		"--grpc-address", fmt.Sprintf("127.0.0.1:%d", s.grpc),
		"--http-address", fmt.Sprintf("127.0.0.1:%d", s.http),
		"--admin-address", fmt.Sprintf("127.0.0.1:%d", s.admin),
		"--grpc-tls-cert", filepath.Join(s.certs, "cert-chain.pem"), "--grpc-tls-key", filepath.Join(s.certs, "key.pem"),
		"--watch-interval-ms", strconv.Itoa(*watchMS), "--decision-log", "off", "--log-level", "warning",
		"--persistence-directory", filepath.Join(s.dir, "state")}
	if *serverThread > 0 {
		args = append(args, "--threads", strconv.Itoa(*serverThread))
	}
	s.cmd = exec.Command(*wardenPath, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.starts++
	fmt.Fprintf(s.log, "--- start %d at %s\n", s.starts, time.Now().UTC().Format(time.RFC3339))
	if err := s.cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	s.exited = exited
	go func(cmd *exec.Cmd) { cmd.Wait(); close(exited) }(s.cmd)
	// Ready when the gRPC listener accepts (it binds after the first load, whatever its outcome).
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.grpc), time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("warden serve exited at start; see %s", s.log.Name())
		default:
		}
	}
	return fmt.Errorf("warden serve did not start; see %s", s.log.Name())
}

func (s *server) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.exited
	}
}

func (s *server) openFiles() int {
	entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.cmd.Process.Pid))
	return len(entries)
}

func (s *server) rss() (int64, error) {
	text, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			return strconv.ParseInt(strings.Fields(line)[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS (a zombie?)")
}

// User and system time of the server so far (/proc/PID/stat, fields 14 and 15, in clock ticks of 1/100 s).
func (s *server) cpu() time.Duration {
	text, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(text[strings.LastIndexByte(string(text), ')')+1:]))
	user, _ := strconv.ParseInt(fields[11], 10, 64)
	system, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(user+system) * 10 * time.Millisecond
}

// How long, since boot, every non-idle task of the machine waited for memory (reclaim, refaults), or -1 when the
// kernel does not report pressure stall information. Other work on the machine shows here: when it thrashes, the
// server's code is evicted and re-read and checks time out, whatever the server does.
func memoryStall() time.Duration {
	text, err := os.ReadFile("/proc/pressure/memory")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(line, "full ") {
			for _, f := range strings.Fields(line) {
				if strings.HasPrefix(f, "total=") {
					us, _ := strconv.ParseInt(strings.TrimPrefix(f, "total="), 10, 64)
					return time.Duration(us) * time.Microsecond
				}
			}
		}
	}
	return -1
}

func clientCPU() time.Duration {
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

type serverStatus struct {
	Revision  *int  `json:"revision"`
	Reloads   int   `json:"reloads"`
	Failures  int   `json:"reload_failures"`
	LastError []any `json:"last_error"`
}

// /v1/status's `result` from the management listener.
func (s *server) status() (serverStatus, error) {
	var out struct {
		Result serverStatus `json:"result"`
	}
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/status", s.admin))
	if err != nil {
		return out.Result, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&out)
	return out.Result, err
}

// Waits until the server, which showed `before`, has loaded the directory again (or, with `refused`, refused it).
func (s *server) awaitLoad(before serverStatus, refused bool) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		st, err := s.status()
		if err != nil {
			continue
		}
		if refused && st.Failures > before.Failures {
			return nil
		}
		if !refused && st.Revision != nil && len(st.LastError) == 0 && (before.Revision == nil || *st.Revision > *before.Revision) {
			return nil
		}
	}
	return fmt.Errorf("the server did not load the directory in 10 s")
}

// Rewrites the policies every -reload: A, B, a bad revision, A, B, the next bad one, ...
type rewriter struct {
	dir       string
	good, bad int
}

func (r *rewriter) run(stop chan struct{}) {
	tick := time.NewTicker(*reloadEvery)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		var err error
		switch n % 3 {
		case 0:
			err = writeRevision(r.dir, badRevisions[(n/3-1)%len(badRevisions)], false)
			r.bad++
		case 1:
			err = writeRevision(r.dir, revisionB, true)
			r.good++
		case 2:
			err = writeRevision(r.dir, revisionA, true)
			r.good++
		}
		if err != nil {
			logf("cannot write the policies: %v", err)
		}
	}
}

// Writes each file of rev to a hidden temporary file and renames it into place; a good revision also removes
// the first bad revision's extra file.
func writeRevision(dir string, rev revision, good bool) error {
	names := make([]string, 0, len(rev))
	for name := range rev {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(rev[name]), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	if good {
		if err := os.Remove(filepath.Join(dir, brokenExtra)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

type faultKind int

const (
	killed faultKind = iota
	restarted
	restartedBad
)

type faultPhase struct {
	*phase
	kind faultKind
}

// The fault phases, under the load that is still running, and what went wrong with the server on the way.
func faultPhases(srv *server, policies string) (out []faultPhase, problems []string, complete bool) {
	add := func(name string, kind faultKind) { out = append(out, faultPhase{begin(name), kind}) }
	problem := func(what string, err error) bool {
		if err != nil {
			logf("%s: %v", what, err)
			problems = append(problems, fmt.Sprintf("%s: %v", what, err))
		}
		return err == nil
	}
	// Changes the directory and waits until the server has loaded (or refused) it.
	change := func(what string, refused bool, write func() error) {
		before, _ := srv.status()
		must(write())
		problem(what, srv.awaitLoad(before, refused))
	}
	killAndRestart := func() bool {
		time.Sleep(2 * time.Second)
		logf("kill -9 %d", srv.cmd.Process.Pid)
		srv.kill()
		time.Sleep(time.Second)
		if !problem("restart", srv.start()) {
			return false
		}
		add("settling", killed)
		time.Sleep(time.Second)
		return true
	}

	// 1. The last good revision on disk (as write-then-rename always leaves it), a kill, a restart.
	add("writing the last good revision", restarted)
	change("loading the last good revision", false, func() error { return writeRevision(policies, revisionA, true) })
	add("kill -9 with the last good revision on disk", killed)
	if !killAndRestart() {
		return
	}
	add("restart on the last good revision", restarted)
	time.Sleep(3 * time.Second)

	// 2. A bad file next to the last good revision, refused by the running server, a kill, a restart.
	change("refusing the bad file", true, func() error { return writeRevision(policies, badRevisions[0], false) })
	add("kill -9 with a bad file present (last good set serving)", killed)
	if !killAndRestart() {
		return
	}
	add("restart with the bad file present", restartedBad)
	time.Sleep(3 * time.Second)

	// 3. The bad file taken away: the restarted server loads the good revision.
	add("removing the bad file", killed)
	change("loading after the bad file is removed", false, func() error {
		return os.Rename(filepath.Join(policies, brokenExtra), filepath.Join(policies, "."+brokenExtra+".off"))
	})
	add("settling", killed)
	time.Sleep(time.Second)
	add("after the bad file is removed", restarted)
	time.Sleep(3 * time.Second)
	begin("stopping")
	return out, problems, true
}

type sample struct {
	at    time.Duration
	kb    int64
	files int // open file descriptors
}

type rssSummary struct {
	first, last, min, max, firstWindow, lastWindow int64
	warmup                                         time.Duration
	growth                                         float64
}

// Warm-up: the first quarter, at most a minute. The plateau after it (a window as long as the warm-up) is
// compared with the last window of the same length, by their medians.
func summarize(rss []sample, total time.Duration) rssSummary {
	var s rssSummary
	if len(rss) == 0 {
		s.growth = 1
		return s
	}
	s.warmup = total / 4
	if s.warmup > time.Minute {
		s.warmup = time.Minute
	}
	s.first, s.last = rss[0].kb, rss[len(rss)-1].kb
	var first, last []int64
	for _, x := range rss {
		if x.at < s.warmup {
			continue
		}
		if s.min == 0 || x.kb < s.min {
			s.min = x.kb
		}
		if x.kb > s.max {
			s.max = x.kb
		}
		if x.at < 2*s.warmup {
			first = append(first, x.kb)
		}
		if x.at >= total-s.warmup {
			last = append(last, x.kb)
		}
	}
	s.firstWindow, s.lastWindow = median(first), median(last)
	if s.firstWindow == 0 || s.lastWindow == 0 {
		s.growth = 1
		return s
	}
	s.growth = float64(s.lastWindow)/float64(s.firstWindow) - 1
	return s
}

func median(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return v[len(v)/2]
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err.Error())
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func must(err error) {
	if err != nil {
		fail(err.Error())
	}
}
