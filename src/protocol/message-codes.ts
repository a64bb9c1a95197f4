// Message type bytes and startup request codes of PostgreSQL protocol 3.0, as const enums for the hot path.

/** Type byte of each message a client (frontend) sends after the startup packet. */
export enum FrontendCode {
  Bind = 0x42, // B
  Close = 0x43, // C
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  CopyFail = 0x66, // f
  Describe = 0x44, // D
  Execute = 0x45, // E
  Flush = 0x48, // H
  FunctionCall = 0x46, // F
  Parse = 0x50, // P
  /** PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse all share 'p'. */
  Password = 0x70, // p
  Query = 0x51, // Q
  Sync = 0x53, // S
  Terminate = 0x58, // X
}

/** Type byte of each message a server (backend) sends. */
export enum BackendCode {
  Authentication = 0x52, // R
  BackendKeyData = 0x4b, // K
  BindComplete = 0x32, // 2
  CloseComplete = 0x33, // 3
  CommandComplete = 0x43, // C
  CopyBothResponse = 0x57, // W
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  CopyInResponse = 0x47, // G
  CopyOutResponse = 0x48, // H
  DataRow = 0x44, // D
  EmptyQueryResponse = 0x49, // I
  ErrorResponse = 0x45, // E
  FunctionCallResponse = 0x56, // V
  NegotiateProtocolVersion = 0x76, // v
  NoData = 0x6e, // n
  NoticeResponse = 0x4e, // N
  NotificationResponse = 0x41, // A
  ParameterDescription = 0x74, // t
  ParameterStatus = 0x53, // S
  ParseComplete = 0x31, // 1
  PortalSuspended = 0x73, // s
  ReadyForQuery = 0x5a, // Z
  RowDescription = 0x54, // T
}

/**
 * The int32 after the length of a startup-phase packet (which has no type byte): a protocol version
 * for StartupMessage, or one of the magic request codes.
 */
export enum StartupCode {
  /** Protocol 3.0: major 3 in the high 16 bits, minor 0 in the low 16. */
  Protocol30 = 196608,
  /** Protocol 3.2 (PostgreSQL 18): longer cancel keys. */
  Protocol32 = 196610,
  CancelRequest = 80877102,
  SSLRequest = 80877103,
  GSSENCRequest = 80877104,
}

/** The int32 that starts the body of an Authentication ('R') message. */
export enum AuthCode {
  Ok = 0,
  KerberosV5 = 2,
  CleartextPassword = 3,
  MD5Password = 5,
  GSS = 7,
  GSSContinue = 8,
  SSPI = 9,
  SASL = 10,
  SASLContinue = 11,
  SASLFinal = 12,
}

/**
 * The code the frame reader reports for a startup-phase packet, which has no type byte of its own.
 * Negative so it can never be mistaken for a type byte (0 to 255).
 */
export const STARTUP_FRAME = -1
