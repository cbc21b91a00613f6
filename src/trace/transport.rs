//! Sending an encoded OTLP `ExportTraceServiceRequest` to the collector: OTLP/gRPC (tonic, the
//! `TraceService/Export` call with a codec that passes the already-encoded bytes through) or
//! OTLP/HTTP (hyper, a protobuf `POST` to the configured URL). Used only on the export thread.
//!
//! Owns no batching, retrying or timing out: the export loop does those. A collector's
//! partial-success answer (some spans rejected) counts as delivered: its body is not read.

use bytes::{Buf, BufMut, Bytes};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};

use crate::config::model::{OtlpProtocol, TraceSettings};

const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the endpoint is not a usable URI")]
    Endpoint,
    #[error("gRPC: {0}")]
    Grpc(#[from] tonic::Status),
    #[error("gRPC connection: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("HTTP: {0}")]
    Http(#[from] hyper_util::client::legacy::Error),
    #[error("HTTP: reading the answer: {0}")]
    Body(#[from] hyper::Error),
    #[error("the collector answered HTTP {0}")]
    Status(u16),
}

pub enum Transport {
    Grpc(tonic::client::Grpc<Channel>),
    Http { client: Client<HttpConnector, Full<Bytes>>, uri: http::Uri },
}

impl Transport {
    /// Connects lazily (the first export connects); must run inside a Tokio runtime.
    pub fn new(s: &TraceSettings) -> Result<Transport, SendError> {
        match s.protocol {
            OtlpProtocol::Grpc => {
                let endpoint = Endpoint::from_shared(s.endpoint.clone()).map_err(|_| SendError::Endpoint)?;
                Ok(Transport::Grpc(tonic::client::Grpc::new(endpoint.connect_lazy())))
            }
            OtlpProtocol::Http => {
                let uri = s.endpoint.parse().map_err(|_| SendError::Endpoint)?;
                Ok(Transport::Http { client: Client::builder(TokioExecutor::new()).build_http(), uri })
            }
        }
    }

    /// One export call with `request`, an encoded `ExportTraceServiceRequest`.
    pub async fn send(&mut self, request: Bytes) -> Result<(), SendError> {
        match self {
            Transport::Grpc(grpc) => {
                grpc.ready().await?;
                let path = http::uri::PathAndQuery::from_static(EXPORT);
                grpc.unary(tonic::Request::new(request), path, Encoded).await?;
                Ok(())
            }
            Transport::Http { client, uri } => {
                let req = http::Request::post(uri.clone())
                    .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                    .body(Full::new(request))
                    .map_err(|_| SendError::Endpoint)?;
                let response = client.request(req).await?;
                let status = response.status();
                // Read to the end, so the connection can carry the next export.
                response.into_body().collect().await?;
                if status.is_success() {
                    Ok(())
                } else {
                    Err(SendError::Status(status.as_u16()))
                }
            }
        }
    }
}

/// A gRPC codec for bytes that already are the request message; the answer is skipped.
#[derive(Clone, Copy)]
struct Encoded;

impl Codec for Encoded {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = Encoded;
    type Decoder = Encoded;

    fn encoder(&mut self) -> Encoded {
        Encoded
    }

    fn decoder(&mut self) -> Encoded {
        Encoded
    }
}

impl Encoder for Encoded {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for Encoded {
    type Item = ();
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}
