import NIOCore
import NIOHTTP1
import Networking
import Testing

@Suite struct HTTPRequestAssemblerTests {
    func head(_ method: HTTPMethod = .POST, length: Int? = nil) -> HTTPServerRequestPart {
        var headers = HTTPHeaders([("host", "x")])
        if let length { headers.add(name: "content-length", value: String(length)) }
        return .head(HTTPRequestHead(version: .http1_1, method: method, uri: "/a?b=c", headers: headers))
    }

    @Test func assemblesWholeRequests() {
        var assembler = HTTPRequestAssembler(maxBodyBytes: 10)
        guard case .none = assembler.receive(head()) else { Issue.record("head"); return }
        guard case .none = assembler.receive(.body(ByteBuffer(string: "hello"))) else { Issue.record("body"); return }
        guard case .deliver(let request) = assembler.receive(.end(nil)) else { Issue.record("end"); return }
        #expect(request.method == "POST")
        #expect(request.path == "/a")
        #expect(request.queryParameter("b") == "c")
        #expect(request.body == Array("hello".utf8))
        #expect(request.header("HOST") == "x")
        // The next request on the same connection starts afresh.
        guard case .none = assembler.receive(head(.GET)) else { Issue.record("second head"); return }
        guard case .deliver(let second) = assembler.receive(.end(nil)) else { Issue.record("second end"); return }
        #expect(second.body.isEmpty)
    }

    @Test func refusesBodiesOverTheLimit() {
        var declared = HTTPRequestAssembler(maxBodyBytes: 4)
        guard case .reject(let refusal) = declared.receive(head(length: 5)) else { Issue.record("declared"); return }
        #expect(refusal == .bodyTooLarge(limit: 4))

        var streamed = HTTPRequestAssembler(maxBodyBytes: 4)
        _ = streamed.receive(head())
        guard case .reject(let tooLarge) = streamed.receive(.body(ByteBuffer(string: "12345"))) else {
            Issue.record("streamed")
            return
        }
        #expect(tooLarge == .bodyTooLarge(limit: 4))
        guard case .none = streamed.receive(.end(nil)) else { Issue.record("after reject"); return }
    }

    @Test func aBodyWithoutAHeadIsMalformed() {
        var assembler = HTTPRequestAssembler(maxBodyBytes: 4)
        guard case .reject(let refusal) = assembler.receive(.body(ByteBuffer(string: "x"))) else { Issue.record("no head"); return }
        #expect(refusal == .malformed)
    }
}

@Suite struct HTTPRequestTargetTests {
    @Test func pathAndQuerySplitAtTheFirstQuestionMark() {
        let cases: [(String, String, String?)] = [
            ("/a/b?x=1&y=2", "/a/b", "x=1&y=2"), ("/a", "/a", nil), ("/?", "/", ""), ("/a?b?c", "/a", "b?c"),
            ("/café/é?q=é", "/café/é", "q=é"), ("/e\u{301}?x", "/e\u{301}", "x"),
        ]
        for (target, path, query) in cases {
            let request = HTTPRequest(method: "GET", target: target, headers: [], body: [])
            #expect(request.path == path[...], "\(target)")
            #expect(request.query.map(String.init) == query, "\(target)")
        }
    }
}
