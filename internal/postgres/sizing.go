package postgres

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Sizing is the memory of the machine (or of the cgroup it runs in) that
// a durable private cluster is sized for, and the settings it gets.
type Sizing struct {
	MemoryBytes int64
	Settings    map[string]string
}

// SizeFor returns the memory settings for a server with maxConns
// connections on memBytes of memory, by the usual rules: a quarter of the
// memory for shared buffers (at most 8 GB: beyond that the kernel's cache
// does as well), three quarters as the planner's effective cache, and the
// rest of a quarter shared between the connections' sorts and hashes.
// Fixed 512 MB buffers on a 24 GB machine left a million organizations'
// working set on disk.
func SizeFor(memBytes int64, maxConns int) Sizing {
	const mb = 1 << 20
	if memBytes < 1<<30 {
		memBytes = 1 << 30
	}
	shared := min(memBytes/4, 8<<30)
	work := clamp(memBytes/4/int64(max(maxConns, 1))/2, 4*mb, 64*mb)
	maint := clamp(memBytes/20, 64*mb, 2<<30)
	return Sizing{MemoryBytes: memBytes, Settings: map[string]string{
		"shared_buffers":       strconv.FormatInt(shared/mb, 10) + "MB",
		"effective_cache_size": strconv.FormatInt(memBytes*3/4/mb, 10) + "MB",
		"work_mem":             strconv.FormatInt(work/mb, 10) + "MB",
		"maintenance_work_mem": strconv.FormatInt(maint/mb, 10) + "MB",
	}}
}

func clamp(v, lo, hi int64) int64 { return min(max(v, lo), hi) }

// MachineMemory is the smaller of the machine's memory and the cgroup's
// limit, in bytes.
func MachineMemory() (int64, error) {
	total, err := memTotal("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && v > 0 && v < total {
			return v, nil
		}
	}
	return total, nil
}

func memTotal(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read memory size: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read memory size: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("read memory size: no MemTotal in %s", path)
}
