package macos

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestRealMac runs the probes on the Mac the tests run on.
func TestRealMac(t *testing.T) {
	p := NewProbe()
	ctx := context.Background()
	v, err := p.SWVers(ctx)
	if err != nil || v.Major() < 11 {
		t.Errorf("SWVers = %+v, %v", v, err)
	}
	c, err := p.CPU(ctx)
	if err != nil || c.NCPU < 1 {
		t.Errorf("CPU = %+v, %v", c, err)
	}
	start, err := p.StartTime(os.Getpid())
	if err != nil || start.After(time.Now()) || time.Since(start) > 10*time.Minute {
		t.Errorf("StartTime(self) = %v, %v", start, err)
	}
	if _, err := p.NixDaemon(ctx); err != nil {
		t.Errorf("NixDaemon: %v", err)
	}
}
