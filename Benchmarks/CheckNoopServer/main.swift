import ExtAuthz
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Networking
import NIOCore
import NIOPosix
import PolicyCore
import SwiftProtobuf
import WardenServer

// Usage:
//   CheckNoopServer serve PORT [THREADS]             answers every Check with OK, deciding nothing, on Warden's
//                                                    gRPC listener (what `warden serve` runs)
//   CheckNoopServer serve-grpc-swift PORT [THREADS]  the same on grpc-swift-2's own NIO HTTP/2 transport
//   CheckNoopServer write-request FILE               writes the gRPC-framed CheckRequest the load test sends

/// The request the load test sends: an Istio sidecar's check of `GET /api/v1/items` on the `details` workload.
func sampleRequest() -> Envoy_Service_Auth_V3_CheckRequest {
    let id = "5d1d4a1e-6f3c-4a8b-9a0f-6c2e1d3b4a5f"
    return CheckRequestParts(
        source: .init(identity: try! SPIFFEID(parsing: "spiffe://cluster.local/ns/default/sa/productpage"), address: "10.1.2.3",
                      port: 43210),
        destination: .init(address: "10.1.2.9", port: 9080), namespace: "default", labels: ["app": "details"],
        requestID: id, method: "GET", host: "details:9080", target: "/api/v1/items?page=2",
        headers: [
            (":authority", "details:9080"), (":method", "GET"), (":path", "/api/v1/items?page=2"), ("user-agent", "Mozilla/5.0"),
            ("accept", "application/json"), ("x-request-id", id), ("x-forwarded-proto", "http"),
        ]
    ).checkRequest
}

/// OK for every check: the request is decoded and the response encoded, as a real service would.
func okResponse(to request: Envoy_Service_Auth_V3_CheckRequest) -> Envoy_Service_Auth_V3_CheckResponse {
    var response = Envoy_Service_Auth_V3_CheckResponse()
    response.status = .init()
    response.okResponse = .init()
    return response
}

struct NoopAuthorization: Envoy_Service_Auth_V3_Authorization.SimpleServiceProtocol {
    func check(request: Envoy_Service_Auth_V3_CheckRequest, context: ServerContext) async throws -> Envoy_Service_Auth_V3_CheckResponse {
        okResponse(to: request)
    }
}

let arguments = CommandLine.arguments
switch (arguments.count > 1 ? arguments[1] : "", arguments.count > 2 ? arguments[2] : "") {
case ("write-request", let file) where !file.isEmpty:
    let message = try sampleRequest().serializedBytes() as [UInt8]
    var framed: [UInt8] = [0]
    let length = UInt32(message.count)
    framed += [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
    framed += message
    try Data(framed).write(to: URL(fileURLWithPath: file))
case (let mode, let port) where (mode == "serve" || mode == "serve-grpc-swift") && Int(port) != nil:
    // As `warden serve --threads N`: N event loops that also run the handlers.
    if arguments.count > 3, let threads = Int(arguments[3]) {
        EventLoops.runTasksOnEventLoops(threads: threads)
    } else {
        EventLoops.sizeToUsableCores()
    }
    if mode == "serve" {
        let check = InPlaceMethod(descriptor: Envoy_Service_Auth_V3_Authorization.Method.Check.descriptor) { bytes, _ in
            try okResponse(to: Envoy_Service_Auth_V3_CheckRequest(serializedBytes: bytes)).serializedBytes()
        }
        let listener = GRPCListener(options: .init(host: "127.0.0.1", port: Int(port)!), inPlace: [check])
        try await GRPCServer(transport: listener, services: []).serve()
    } else {
        let server = GRPCServer(
            transport: .http2NIOPosix(address: .ipv4(host: "127.0.0.1", port: Int(port)!), transportSecurity: .plaintext),
            services: [NoopAuthorization()])
        try await server.serve()
    }
default:
    FileHandle.standardError.write(Data("usage: CheckNoopServer serve|serve-grpc-swift PORT [THREADS] | write-request FILE\n".utf8))
    exit(2)
}
