package bench

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// What the harness reads about processes and the machine, from Linux's /proc.

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every
// Linux architecture (the kernel converts to it for user space whatever its own HZ).
const clockTicks = 100

// cpuSeconds is a process's CPU time so far: utime + stime of /proc/<pid>/stat (fields 14
// and 15), in seconds, with a resolution of 10 ms.
func cpuSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of process %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: count fields after
	// the last ')'. Field 3 (state) is then the first.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name in %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command name, want at least 13", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q are not numbers", pid, f[11], f[12])
	}
	return float64(utime+stime) / clockTicks, nil
}

// cpuMeter reads a process's CPU time at the start and end of a measurement; a zero pid
// (a component running inside the harness) measures nothing.
type cpuMeter struct {
	pid   int
	start float64
}

func startCPU(pid int) (*cpuMeter, error) {
	m := &cpuMeter{pid: pid}
	if pid == 0 {
		return m, nil
	}
	var err error
	m.start, err = cpuSeconds(pid)
	return m, err
}

// used is the CPU time since the start, or -1 when not measured.
func (m *cpuMeter) used() (float64, error) {
	if m.pid == 0 {
		return -1, nil
	}
	now, err := cpuSeconds(m.pid)
	return now - m.start, err
}

// settle waits until a process has stopped working after a run, so that the CPU time it
// spends on the run's tail (acknowledgements, transaction log writes) is counted: until
// it used at most one tick in a quarter second, for at most limit.
func settle(pid int, limit time.Duration) {
	if pid == 0 {
		return
	}
	deadline := time.Now().Add(limit)
	last, err := cpuSeconds(pid)
	for err == nil && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		var now float64
		if now, err = cpuSeconds(pid); err == nil && now-last <= 1.0/clockTicks {
			return
		}
		last = now
	}
}

// peakRSS reads a process's resident-set high-water mark (VmHWM) in bytes.
func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the peak RSS of process %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			if f := strings.Fields(rest); len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("/proc/%d/status: VmHWM %q", pid, rest)
				}
				return kb * 1024, nil
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}

// resetPeakRSS resets VmHWM to the current RSS (writing 5 to clear_refs), so that each
// measurement sees its own peak.
func resetPeakRSS(pid int) error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0o200); err != nil {
		return fmt.Errorf("resetting the peak RSS of process %d: %w", pid, err)
	}
	return nil
}

// dirBytes is the total size of the regular files under dir.
func dirBytes(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
		}
		return nil
	})
	return total, err
}

// Machine describes where a report was measured.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryMiB int64  `json:"memoryMiB"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
	Kernel    string `json:"kernel,omitempty"`
	Host      string `json:"host"`
	Date      string `json:"date"`
}

// thisMachine reads the CPU model and memory from /proc (left empty where unreadable).
func thisMachine(now time.Time) Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		Date: now.UTC().Format(time.RFC3339)}
	m.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					m.MemoryMiB = kb / 1024
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}
