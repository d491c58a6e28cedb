package postgres

import (
	"testing"
)

func TestSizeFor(t *testing.T) {
	for _, c := range []struct {
		mem                                     int64
		conns                                   int
		shared, effective, work, maintenanceMem string
	}{
		// This machine: 24 GB, 400 connections.
		{24 << 30, 400, "6144MB", "18432MB", "7MB", "1228MB"},
		// A large one: shared buffers stop at 8 GB, maintenance at 2 GB.
		{128 << 30, 100, "8192MB", "98304MB", "64MB", "2048MB"},
		// A small one is sized as 1 GB.
		{256 << 20, 20, "256MB", "768MB", "6MB", "64MB"},
	} {
		s := SizeFor(c.mem, c.conns).Settings
		got := [4]string{s["shared_buffers"], s["effective_cache_size"], s["work_mem"], s["maintenance_work_mem"]}
		want := [4]string{c.shared, c.effective, c.work, c.maintenanceMem}
		if got != want {
			t.Errorf("SizeFor(%d, %d) = %v, want %v", c.mem, c.conns, got, want)
		}
	}
}

func TestMachineMemory(t *testing.T) {
	m, err := MachineMemory()
	if err != nil {
		t.Fatal(err)
	}
	if m < 64<<20 {
		t.Errorf("machine memory %d bytes: not read", m)
	}
}
