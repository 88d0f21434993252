// The shapes the widget reads and writes: identity's widget endpoints (docs/identity-widget.md) and messaging's
// member API (services/messaging/openapi.json, tag `member`).

export interface WidgetConfig {
  tenant_id?: string;
  identity_required: boolean;
  greeting: string;
  accent_colour: string;
}

export interface MemberToken {
  access_token: string;
  expires_in: number;
  subject: string;
}

export interface Attachment {
  object_id: string;
  file_name: string;
  content_type: string;
  size_bytes: number;
}

export interface Message {
  id: string;
  conversation_id: string;
  seq: number;
  author: 'member' | 'staff';
  body: string;
  attachments: Attachment[];
  client_message_id?: string | null;
  created_at: string;
}

export interface Conversation {
  id: string;
  status: string;
  revision: number;
  last_seq: number;
  read_seq: number;
  staff_read_seq: number;
  unread: number;
  created_at: string;
  updated_at: string;
}

export interface AttachmentUpload {
  object_id: string;
  upload: { url: string; method: string; headers?: Record<string, string> };
  expires_at: string;
}

export interface AttachmentLink {
  url: string;
  expires_at: string;
}

/** Who the widget speaks for, as the host page said. */
export interface Identity {
  /** `null` (or an empty string) signs the member out. */
  identifier?: string | null;
  identifierHash?: string | null;
  name?: string;
  email?: string;
}
