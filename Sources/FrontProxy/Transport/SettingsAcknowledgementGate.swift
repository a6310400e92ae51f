import NIOCore

/// Lets an HTTP/2 server's own header list bound apply from a connection's first request.
///
/// swift-nio-http2 decodes header blocks under its 16 KiB default until the client acknowledges the SETTINGS that
/// raise it (`--max-header-bytes`, 60 KiB). Clients send their first requests before that acknowledgement (curl and
/// Envoy do), so a first request with a 16–60 KiB header list would end the connection. This handler sits in front
/// of `NIOHTTP2Handler` and reads only frame headers. From the first HEADERS frame before the acknowledgement whose
/// block could decode past the default, it holds the connection's bytes until the acknowledgement comes, then passes
/// the acknowledgement first and the held bytes after it. Settings take effect earlier than the client asked, which
/// only the server's own bounds notice. Once the acknowledgement has passed, the handler leaves the pipeline.
///
/// Smaller first requests pass at once: holding costs the client a round trip, so only the blocks that need it pay.
final class SettingsAcknowledgementGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// A HEADERS frame longer than this, or one continued in CONTINUATION frames, is held. Huffman coding decodes at
    /// most 8 bits from 5, so 4 KiB of literals stays far below the decoder's default 16 KiB.
    static let holdingThreshold = 4096
    static let frameHeaderLength = 9
    private static let clientPrefaceLength = 24

    private enum Phase { case passing, holding, done }

    private let maximumHeldBytes: Int
    private let maximumHoldingTime: TimeAmount
    private var phase = Phase.passing
    /// Bytes not yet passed on: a partial frame header while passing, everything from the held frame on while
    /// holding.
    private var unsent: ByteBuffer?
    /// How many of `unsent`'s bytes have been read (frame headers and the payload bytes skipped).
    private var scanned = 0
    private var prefaceRemaining = SettingsAcknowledgementGate.clientPrefaceLength
    private var payloadRemaining = 0
    private var releaseTimer: Scheduled<Void>?

    /// - Parameters:
    ///   - maximumHeldBytes: held bytes beyond this are released as they are (the decoder's default then applies).
    ///   - maximumHoldingTime: a client that does not acknowledge within this long gets the same.
    init(maximumHeldBytes: Int, maximumHoldingTime: TimeAmount = .seconds(1)) {
        self.maximumHeldBytes = maximumHeldBytes
        self.maximumHoldingTime = maximumHoldingTime
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard phase != .done else { return context.fireChannelRead(data) }
        if unsent == nil { unsent = bytes } else { unsent!.writeBuffer(&bytes) }
        scan(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        releaseTimer?.cancel()
        releaseTimer = nil
        // Held bytes go on when the handler leaves a live connection (a read may not follow: the timer).
        if let rest = unsent, rest.readableBytes > 0, context.channel.isActive {
            unsent = nil
            context.fireChannelRead(wrapInboundOut(rest))
            context.fireChannelReadComplete()
        }
    }

    /// Reads frame headers as far as the bytes go, and passes on what need not wait.
    private func scan(context: ChannelHandlerContext) {
        guard var buffer = unsent else { return }
        while true {
            let available = buffer.readableBytes - scanned
            if prefaceRemaining > 0 || payloadRemaining > 0 {
                let skipped = min(available, prefaceRemaining > 0 ? prefaceRemaining : payloadRemaining)
                if prefaceRemaining > 0 { prefaceRemaining -= skipped } else { payloadRemaining -= skipped }
                scanned += skipped
                if available == skipped { break }
                continue
            }
            guard available >= Self.frameHeaderLength,
                let header = buffer.getBytes(at: buffer.readerIndex + scanned, length: Self.frameHeaderLength)
            else { break }
            let length = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
            let type = header[3], flags = header[4]
            if type == 0x4, flags & 0x1 != 0 {
                acknowledged(context: context, buffer: &buffer, frameLength: Self.frameHeaderLength + length)
                return
            }
            if phase == .passing, type == 0x1, length > Self.holdingThreshold || flags & 0x4 == 0 {
                pass(context: context, buffer: &buffer, count: scanned)
                phase = .holding
                releaseTimer = context.eventLoop.assumeIsolated().scheduleTask(in: maximumHoldingTime) { [self] in
                    finish(context: context)
                }
            }
            scanned += Self.frameHeaderLength
            payloadRemaining = length
        }
        switch phase {
        case .passing:
            // Everything before a partial frame header goes on now.
            pass(context: context, buffer: &buffer, count: scanned)
            unsent = buffer.readableBytes > 0 ? buffer : nil
        case .holding:
            unsent = buffer
            if buffer.readableBytes > maximumHeldBytes { finish(context: context) }
        case .done:
            unsent = buffer
        }
    }

    /// The client's acknowledgement, `frameLength` bytes at `scanned`: it goes first, then whatever was held.
    private func acknowledged(context: ChannelHandlerContext, buffer: inout ByteBuffer, frameLength: Int) {
        if phase == .holding, buffer.readableBytes - scanned >= frameLength {
            let before = buffer.readSlice(length: scanned)!
            let acknowledgement = buffer.readSlice(length: frameLength)!
            context.fireChannelRead(wrapInboundOut(acknowledgement))
            context.fireChannelRead(wrapInboundOut(before))
        }
        unsent = buffer
        finish(context: context)
    }

    /// Passes on everything still here and leaves the pipeline.
    private func finish(context: ChannelHandlerContext) {
        guard phase != .done else { return }
        phase = .done
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func pass(context: ChannelHandlerContext, buffer: inout ByteBuffer, count: Int) {
        guard count > 0, let slice = buffer.readSlice(length: count) else { return }
        scanned -= count
        context.fireChannelRead(wrapInboundOut(slice))
    }
}
