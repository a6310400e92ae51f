import PolicyCore
import Testing

@Suite struct IPAddressTests {
    @Test(arguments: ["10.0.0.1", "0.0.0.0", "255.255.255.255", "::", "::1", "2001:db8::1", "fe80::1:2", "::ffff:1.2.3.4", "1:2:3:4:5:6:7:8"])
    func parsesValidAddresses(text: String) {
        #expect(IPAddress(text) != nil)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "1.2.3.4/8", "::1::", "1:2:3:4:5:6:7:8:9", "12345::", "g::1", ":1", "1:", "fe80::1%eth0"])
    func rejectsInvalidAddresses(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func printsCanonicalText() {
        #expect(IPAddress("2001:0db8:0:0:0:0:0:1")?.description == "2001:db8::1")
        #expect(IPAddress("10.1.2.3")?.description == "10.1.2.3")
        #expect(IPAddress("::")?.description == "::")
    }

    @Test func cidrContainment() throws {
        let block = try #require(CIDR("10.0.0.0/8"))
        #expect(block.contains(IPAddress("10.255.1.2")!))
        #expect(!block.contains(IPAddress("11.0.0.1")!))
        #expect(!block.contains(IPAddress("::ffff:10.0.0.1")!))
        let host = try #require(CIDR("192.168.1.7"))
        #expect(host.prefixLength == 32)
        #expect(host.contains(IPAddress("192.168.1.7")!))
        #expect(!host.contains(IPAddress("192.168.1.8")!))
        let v6 = try #require(CIDR("2001:db8::/32"))
        #expect(v6.contains(IPAddress("2001:db8:ffff::1")!))
        #expect(!v6.contains(IPAddress("2001:db9::1")!))
        #expect(try #require(CIDR("0.0.0.0/0")).contains(IPAddress("8.8.8.8")!))
        #expect(try #require(CIDR("10.1.2.3/8")).contains(IPAddress("10.9.9.9")!), "host bits are ignored")
    }

    @Test(arguments: ["10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/08", "::/129", "x/8"])
    func rejectsInvalidCIDRs(text: String) {
        #expect(CIDR(text) == nil)
    }
}
