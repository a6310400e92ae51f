import NIOCore
import Testing
@testable import Networking

@Suite struct EventLoopSizingTests {
    @Test func countsALinuxCPUList() {
        #expect(EventLoops.allowedCPUCount("0") == 1)
        #expect(EventLoops.allowedCPUCount("0-3,8,10-11\n") == 7)
        #expect(EventLoops.allowedCPUCount("\t0-1") == 2)
        #expect(EventLoops.allowedCPUCount("3-1") == nil)
        #expect(EventLoops.allowedCPUCount("x") == nil)
        #expect(EventLoops.allowedCPUCount("") == nil)
    }

    @Test func usesNoMoreLoopsThanTheCPUsItMayRunOn() {
        #expect(EventLoops.usableCores() >= 1)
        #expect(EventLoops.usableCores() <= System.coreCount)
    }
}
