package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/runner"
)

// HealthConfig is Docker's health check configuration (image HEALTHCHECK,
// container --health-* flags).
type HealthConfig = dockerspec.HealthcheckConfig

// Docker's health check defaults and limits.
const (
	DefaultHealthInterval      = 30 * time.Second
	DefaultHealthTimeout       = 30 * time.Second
	DefaultHealthStartInterval = 5 * time.Second
	DefaultHealthRetries       = 3
	healthLogEntries           = 5    // results kept in Health.Log
	healthOutputMax            = 4096 // bytes of output kept per result
)

// Health statuses, as docker's.
const (
	HealthNone      = "none"
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Health is Docker's State.Health: kept in health.json by the monitor.
type Health struct {
	Status        string
	FailingStreak int
	Log           []HealthResult
}

// HealthResult is one check.
type HealthResult struct {
	Start    time.Time
	End      time.Time
	ExitCode int
	Output   string
}

// MergeHealth is the container's health check: over's fields (the flags)
// where set, else the image's, as docker merges them. A nil result or Test
// ["NONE"] means no health check.
func MergeHealth(image, over *HealthConfig) *HealthConfig {
	if image == nil && over == nil {
		return nil
	}
	var out HealthConfig
	if image != nil {
		out = *image
	}
	if over != nil {
		if len(over.Test) > 0 {
			out.Test = over.Test
		}
		if over.Interval != 0 {
			out.Interval = over.Interval
		}
		if over.Timeout != 0 {
			out.Timeout = over.Timeout
		}
		if over.StartPeriod != 0 {
			out.StartPeriod = over.StartPeriod
		}
		if over.StartInterval != 0 {
			out.StartInterval = over.StartInterval
		}
		if over.Retries != 0 {
			out.Retries = over.Retries
		}
	}
	return &out
}

// healthEnabled reports whether hc describes a check to run.
func healthEnabled(hc *HealthConfig) bool {
	return hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE"
}

// healthArgs is the argv of the check: CMD args run as they are, CMD-SHELL
// through /bin/sh -c.
func healthArgs(test []string) ([]string, error) {
	switch {
	case len(test) >= 2 && test[0] == "CMD":
		return test[1:], nil
	case len(test) == 2 && test[0] == "CMD-SHELL":
		return []string{"/bin/sh", "-c", test[1]}, nil
	}
	return nil, fmt.Errorf("health check: unsupported test %q", test)
}

func (c *Container) healthPath() string { return filepath.Join(c.Dir, "health.json") }

// loadHealth reads the container's health, nil when it has no check or was
// never started.
func (c *Container) loadHealth() *Health {
	if !healthEnabled(c.Config.Config.Healthcheck) {
		return nil
	}
	var h Health
	if err := readJSON(c.healthPath(), &h); err != nil {
		return nil
	}
	return &h
}

// healthMonitor runs a container's health checks from its monitor while
// the container's process runs.
type healthMonitor struct {
	c    *Container
	hc   HealthConfig
	args []string
	mu   sync.Mutex
	h    Health
	stop chan struct{}
	done chan struct{}
}

// startHealth starts the checks of a container that just started (nil when
// it has none). The health restarts as "starting".
func (m *monitorState) startHealth() *healthMonitor {
	c := m.c
	hc := c.Config.Config.Healthcheck
	if !healthEnabled(hc) {
		return nil
	}
	hm := &healthMonitor{c: c, hc: *hc, stop: make(chan struct{}), done: make(chan struct{})}
	if hm.hc.Interval == 0 {
		hm.hc.Interval = DefaultHealthInterval
	}
	if hm.hc.Timeout == 0 {
		hm.hc.Timeout = DefaultHealthTimeout
	}
	if hm.hc.StartInterval == 0 {
		hm.hc.StartInterval = DefaultHealthStartInterval
	}
	if hm.hc.Retries == 0 {
		hm.hc.Retries = DefaultHealthRetries
	}
	hm.h = Health{Status: HealthStarting, Log: []HealthResult{}}
	args, err := healthArgs(hc.Test)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kiln-monitor:", err)
		hm.h.Status = HealthUnhealthy
	}
	hm.args = args
	hm.save()
	if args == nil {
		close(hm.done)
		return hm
	}
	go hm.loop(c.State.StartedAt)
	return hm
}

// finish stops the checks of a container whose process exited: its health
// is then unhealthy, as docker's.
func (hm *healthMonitor) finish() {
	if hm == nil {
		return
	}
	select {
	case <-hm.done:
	default:
		close(hm.stop)
		<-hm.done
	}
	hm.mu.Lock()
	hm.h.Status = HealthUnhealthy
	hm.mu.Unlock()
	hm.save()
}

func (hm *healthMonitor) save() {
	hm.mu.Lock()
	h := hm.h
	h.Log = append([]HealthResult{}, hm.h.Log...)
	hm.mu.Unlock()
	if err := writeJSONAtomic(hm.c.healthPath(), h); err != nil {
		fmt.Fprintln(os.Stderr, "kiln-monitor:", err)
	}
}

func (hm *healthMonitor) loop(started time.Time) {
	defer close(hm.done)
	for {
		// Checks come every StartInterval during the start period (until
		// the first success), every Interval after.
		wait := hm.hc.Interval
		hm.mu.Lock()
		status := hm.h.Status
		hm.mu.Unlock()
		if hm.hc.StartPeriod > 0 && status == HealthStarting && time.Since(started) < hm.hc.StartPeriod {
			wait = hm.hc.StartInterval
		}
		select {
		case <-hm.stop:
			return
		case <-time.After(wait):
		}
		if hm.c.frozen() {
			continue // a paused container is not checked (its check would only time out)
		}
		r := hm.probe()
		select {
		case <-hm.stop:
			return // the container exited meanwhile: the result is meaningless
		default:
		}
		hm.record(r, time.Since(started) < hm.hc.StartPeriod)
	}
}

// record applies one result: success makes the container healthy, a
// failure counts towards Retries, except during the start period while the
// container was never healthy.
func (hm *healthMonitor) record(r HealthResult, inStartPeriod bool) {
	hm.mu.Lock()
	old := hm.h.Status
	hm.h.Log = append(hm.h.Log, r)
	if len(hm.h.Log) > healthLogEntries {
		hm.h.Log = hm.h.Log[len(hm.h.Log)-healthLogEntries:]
	}
	if r.ExitCode == 0 {
		hm.h.Status, hm.h.FailingStreak = HealthHealthy, 0
	} else if !(inStartPeriod && hm.h.Status == HealthStarting) {
		hm.h.FailingStreak++
		if hm.h.FailingStreak >= hm.hc.Retries {
			hm.h.Status = HealthUnhealthy
		}
	}
	status := hm.h.Status
	hm.mu.Unlock()
	hm.save()
	if status != old {
		hm.c.logEvent("health_status: "+status, nil)
	}
}

// probe runs the check once in the container, as an exec, and kills it
// after Timeout (exit code -1, as docker).
func (hm *healthMonitor) probe() HealthResult {
	r := HealthResult{Start: time.Now().UTC(), ExitCode: -1}
	c := hm.c
	spec, err := execSpec(c, ExecOptions{Args: hm.args})
	if err != nil {
		r.Output = err.Error()
		r.End = time.Now().UTC()
		return r
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		r.Output = err.Error()
		r.End = time.Now().UTC()
		return r
	}
	spec.Stdout, spec.Stderr = pw, pw
	p, code, err := runner.StartExec(spec)
	pw.Close()
	if err != nil {
		pr.Close()
		r.ExitCode, r.Output, r.End = max(code, 1), err.Error(), time.Now().UTC()
		if errors.Is(err, runner.ErrSandboxGone) {
			r.ExitCode = -1
		}
		return r
	}
	outc := make(chan string, 1)
	go func() {
		data, _ := io.ReadAll(io.LimitReader(pr, healthOutputMax))
		_, _ = io.Copy(io.Discard, pr) // do not block the check on a full pipe
		pr.Close()
		outc <- string(data)
	}()
	codec := make(chan int, 1)
	go func() { code, _ := p.Wait(); codec <- code }()
	timer := time.NewTimer(hm.hc.Timeout)
	defer timer.Stop()
	select {
	case code := <-codec:
		r.ExitCode = code
		r.Output = <-outc
	case <-timer.C:
		_ = unix.Kill(p.Pid, unix.SIGKILL)
		<-codec
		<-outc
		r.ExitCode = -1
		r.Output = fmt.Sprintf("Health check exceeded timeout (%s)", hm.hc.Timeout)
	case <-hm.stop:
		_ = unix.Kill(p.Pid, unix.SIGKILL)
		<-codec
		<-outc
	}
	r.End = time.Now().UTC()
	return r
}

// WaitHealthy waits until the container's health check reports healthy. It
// fails when the container has no health check or is not running, and,
// with failOnUnhealthy, when it turns unhealthy.
func (c *Container) WaitHealthy(failOnUnhealthy bool) error {
	return c.waitHealth(HealthHealthy, failOnUnhealthy)
}

// WaitUnhealthy waits until the container's health check reports unhealthy.
func (c *Container) WaitUnhealthy() error { return c.waitHealth(HealthUnhealthy, false) }

func (c *Container) waitHealth(want string, failOnUnhealthy bool) error {
	if !healthEnabled(c.Config.Config.Healthcheck) {
		return fmt.Errorf("container %s has no health check", c.Name)
	}
	// An unhealthy status only fails the wait once a check that started
	// after the wait says so: a container unhealthy when the wait begins
	// (being fixed) gets its next check.
	since := time.Now()
	delay := time.Millisecond
	for {
		if err := c.Refresh(); err != nil {
			return err
		}
		if !c.State.Running && !c.State.Restarting {
			return fmt.Errorf("container %s: %w", c.Name, ErrNotRunning)
		}
		if h := c.State.Health; h != nil && c.State.Running {
			if h.Status == want {
				return nil
			}
			if n := len(h.Log); h.Status == HealthUnhealthy && failOnUnhealthy && n > 0 && !h.Log[n-1].Start.Before(since) {
				return fmt.Errorf("container %s is unhealthy: %s", c.Name, strings.TrimSpace(h.Log[n-1].Output))
			}
		}
		time.Sleep(delay)
		delay = min(delay*2, 50*time.Millisecond)
	}
}
