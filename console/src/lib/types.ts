// The services' documents, as their committed openapi.json files name them
// (services/<name>/openapi.json). Only what the console reads or sends.

export interface Page<T> {
  data: T[];
  next_cursor?: string | null;
}

export interface FieldError {
  field: string;
  message: string;
}

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  errors?: FieldError[];
}

// ---- identity ----

export type RoleName = 'admin' | 'fundraiser' | 'messenger' | 'viewer';
export const ROLES: RoleName[] = ['admin', 'fundraiser', 'messenger', 'viewer'];

export interface SessionStaff {
  id: string;
  tenant_id: string;
  tenant_name: string;
  name: string;
  email: string;
  role: RoleName;
}

/** The answer of `POST /sign-in/tokens` and `POST /session/refresh`. */
export interface SessionGrant {
  access_token: string;
  token_type: string;
  expires_in: number;
  scopes: string[];
  staff: SessionStaff;
  session_expires_at?: string;
}

export interface StaffView {
  id: string;
  name: string;
  email: string;
  role: RoleName;
  scopes: string[];
  invited_by: string;
  revision: number;
  created_at: string;
  updated_at: string;
}

export interface PeriodEnd {
  month: number;
  day: number;
}

export interface Tenant {
  id: string;
  name: string;
  fiscal_year_start_month: number;
  accounting_period_end: PeriodEnd;
  /** IANA time zone name, e.g. `Europe/London`: timestamps are shown in it. */
  time_zone: string;
  revision: number;
  created_at: string;
  updated_at: string;
}

// ---- fundraising ----

export const CURRENCIES = ['GBP', 'EUR', 'USD', 'CAD', 'AUD', 'NZD', 'CHF', 'SEK', 'NOK', 'DKK', 'JPY'] as const;

export interface Address {
  line1?: string | null;
  line2?: string | null;
  town?: string | null;
  county?: string | null;
  postcode?: string | null;
  country?: string | null;
}

export interface DonorView {
  id: string;
  title?: string | null;
  first_name?: string | null;
  last_name: string;
  email?: string | null;
  phone?: string | null;
  address: Address;
  household_id?: string | null;
  external_ids: Record<string, string>;
  communication_preferences: { email: boolean; phone: boolean; post: boolean; sms: boolean };
  revision: number;
  created_at: string;
  updated_at: string;
}

export interface DonorInput {
  first_name?: string | null;
  last_name: string;
  email?: string | null;
  phone?: string | null;
  address?: Address | null;
}

export interface MatchInput {
  first_name?: string | null;
  last_name?: string | null;
  email?: string | null;
  postcode?: string | null;
  phone?: string | null;
}

export interface DonorMatch {
  donor: DonorView;
  matched_by: string[];
}

export interface FundView {
  id: string;
  code: string;
  name: string;
  restricted: boolean;
  archived: boolean;
  revision: number;
}

export interface AllocationView {
  fund_id: string;
  amount_minor: number;
}

export interface GiftBatchInput {
  name: string;
  currency: string;
  expected_count: number;
  expected_total_minor: number;
  default_fund_id?: string | null;
  default_gift_date?: string | null;
  default_payment_method?: string | null;
}

/** A gift batch (`/v1/gift-batches`), with what its entries add up to now. */
export interface GiftBatchView {
  id: string;
  revision: number;
  name: string;
  currency: string;
  expected_count: number;
  expected_total_minor: number;
  status: 'open' | 'processed' | string;
  entered_count: number;
  entered_total_minor: number;
  count_matches: boolean;
  total_matches: boolean;
  default_fund_id?: string | null;
  default_gift_date?: string | null;
  default_payment_method?: string | null;
  processed_at?: string | null;
  processed_by?: string | null;
  created_at: string;
  updated_at: string;
}

export interface GiftBatchEntryInput {
  donor_id: string;
  amount_minor: number;
  gift_date?: string | null;
  payment_method?: string | null;
  allocations?: { fund_id: string; amount_minor: number }[] | null;
  notes?: string | null;
}

export interface GiftBatchEntryView {
  id: string;
  batch_id: string;
  position: number;
  donor_id: string;
  amount_minor: number;
  currency: string;
  gift_date: string;
  status: string;
  source: string;
  payment_method?: string | null;
  allocations: AllocationView[];
  notes?: string | null;
  gift_id?: string | null;
  created_at: string;
  updated_at: string;
}

export interface GiftInput {
  donor_id: string;
  amount_minor: number;
  currency: string;
  gift_date: string;
  payment_method?: string | null;
  allocations?: AllocationView[];
  notes?: string | null;
}

export interface GiftView {
  id: string;
  donor_id: string;
  amount_minor: number;
  currency: string;
  gift_date: string;
  status: string;
  source: string;
  payment_method?: string | null;
  fund?: string | null;
  campaign?: string | null;
  notes?: string | null;
  refund_of?: string | null;
  pledge_id?: string | null;
  external_reference?: string | null;
  allocations: AllocationView[];
  sponsored_event: boolean;
  revision: number;
  created_at: string;
}

export type DeclarationMethod = 'online' | 'written' | 'oral';

export interface DeclarationBody {
  declaration_text: string;
  method: DeclarationMethod;
  declared_on?: string | null;
  start_date?: string | null;
}

export interface DeclarationView {
  id: string;
  donor_id: string;
  declaration_text: string;
  method: string;
  declared_on: string;
  start_date: string;
  end_date?: string | null;
  end_reason?: string | null;
  state: string;
  confirmation_sent_on?: string | null;
  cancellation_window_ends?: string | null;
  cancelled_on?: string | null;
}

export interface MemberView {
  id: string;
  first_name?: string | null;
  last_name: string;
}

export interface HouseholdView {
  id: string;
  name: string;
  members: MemberView[];
}

export interface InstalmentView {
  number: number;
  due_date: string;
  amount_minor: number;
  covered: boolean;
  overdue: boolean;
}

export interface PledgeView {
  id: string;
  donor_id: string;
  amount_minor: number;
  currency: string;
  frequency: string;
  instalments: number;
  start_date: string;
  status: string;
  paid_minor: number;
  outstanding_minor: number;
  fund_id?: string | null;
  schedule: InstalmentView[];
}

export interface RecurringView {
  id: string;
  donor_id?: string | null;
  amount_minor: number;
  currency: string;
  interval: string;
  provider: string;
  provider_reference: string;
  status: string;
  last_paid_date?: string | null;
  next_expected_date?: string | null;
}

export interface CandidateDonorView {
  id: string;
  first_name?: string | null;
  last_name: string;
  email?: string | null;
}

export interface StagingEntryView {
  id: string;
  status: string;
  reason: string;
  created_at: string;
  decided_at?: string | null;
  donor_id?: string | null;
  gift_id?: string | null;
  rejection_reason?: string | null;
  provider_event_id: string;
  candidate_donors: CandidateDonorView[];
  payer: {
    customer_id?: string | null;
    display_name?: string | null;
    email?: string | null;
    first_name?: string | null;
    last_name?: string | null;
    message?: string | null;
  };
  proposed_gift: {
    amount_minor: number;
    currency: string;
    gift_date: string;
    source: string;
    external_reference: string;
    payment_method?: string | null;
    fund?: string | null;
    campaign?: string | null;
    gift_aid_claimable: boolean;
    recurring_reference?: string | null;
  };
}

export type ApproveInput =
  | { donor_id: string }
  | { create_donor: { first_name?: string | null; last_name: string; email?: string | null } };

export const IMPORT_FIELDS = [
  'donor_external_id', 'title', 'first_name', 'last_name', 'email', 'phone', 'address_line1', 'address_line2',
  'town', 'county', 'postcode', 'country', 'gift_reference', 'amount', 'currency', 'gift_date', 'status',
  'payment_method', 'fund', 'campaign', 'notes', 'refund_of', 'gift_aid_declaration',
  'gift_aid_declaration_date', 'gift_aid_declaration_method',
] as const;

export const DONOR_MATCH_RULES = ['external_id', 'email', 'name_email', 'name_postcode', 'name_phone'] as const;

export interface ImportRequest {
  object_id?: string;
  csv?: string;
  source: string;
  mapping?: Record<string, string> | null;
  donor_match?: string[] | null;
  gift_match?: 'reference' | 'donor_amount_date' | null;
  gift_match_days?: number | null;
  create_missing_funds?: boolean | null;
}

export interface ImportView {
  id: string;
  status: string;
  rows_total: number;
  rows_done: number;
  summary: Record<string, number>;
  options: Record<string, unknown>;
  outcomes_href: string;
  object_id?: string | null;
  error?: string | null;
  created_at: string;
  updated_at: string;
}

export interface ClaimView {
  id: string;
  status: string;
  up_to: string;
  gifts: number;
  amount_minor: number;
  gift_aid_minor: number;
  exclusions: number;
  rejected: number;
  rejected_amount_minor: number;
  hmrc_reference?: string | null;
  submitted_at?: string | null;
  answered_on?: string | null;
  created_at: string;
  revision: number;
}

export interface ClaimGiftView {
  gift_id: string;
  donor_id: string;
  declaration_id: string;
  gift_date: string;
  amount_minor: number;
  gift_aid_minor: number;
  state: string;
  rejection?: string | null;
}

export interface Reason {
  code: string;
  detail: string;
}

export interface ExclusionView {
  gift_id: string;
  donor_id: string;
  gift_date: string;
  amount_minor: number;
  reasons: Reason[];
}

export interface FileView {
  id: string;
  export_id: string;
  format: string;
  part: number;
  parts: number;
  rows: number;
  size_bytes: number;
  sha256: string;
  href: string;
  object_id?: string | null;
  created_at: string;
}

export interface GiftAidSettingsView {
  accounting_period_end: PeriodEnd;
  agent_sources: string[];
  aggregate_up_to_minor: number;
}

// ---- rollup ----

export interface FiscalYearSummary {
  fiscal_year: number;
  total_minor: number;
  count: number;
  donors: number;
}

export interface MonthSummary {
  month: string;
  total_minor: number;
  count: number;
  donors: number;
}

export interface CurrencySummary {
  currency: string;
  by_fiscal_year: FiscalYearSummary[];
  by_month: MonthSummary[];
  unallocated_minor: number;
}

export interface Summary {
  fiscal_year_start_month: number;
  currencies: CurrencySummary[];
}

export interface RetentionYear {
  fiscal_year: number;
  donors: number;
  new: number;
  retained: number;
  reactivated: number;
  lapsed: number;
}

export interface Retention {
  current_fiscal_year: number;
  fiscal_year_start_month: number;
  fiscal_years: RetentionYear[];
}

export interface FiscalYearAmount {
  fiscal_year: number;
  total_minor: number;
  count: number;
}

export interface DatedAmount {
  date: string;
  amount_minor: number;
}

export interface CurrencyGiving {
  currency: string;
  lifetime_total_minor: number;
  lifetime_count: number;
  average_gift_minor?: number | null;
  largest_gift_minor?: number | null;
  smallest_gift_minor?: number | null;
  first_gift?: DatedAmount | null;
  last_gift?: DatedAmount | null;
  this_fiscal_year: FiscalYearAmount;
  last_fiscal_year: FiscalYearAmount;
  fiscal_year_before_last: FiscalYearAmount;
  best_fiscal_year?: FiscalYearAmount | null;
  consecutive_fiscal_years: number;
  fiscal_years_donated: number;
  last_365_days: { total_minor: number; count: number };
}

export interface DonorGiving {
  donor_id: string;
  display_name?: string | null;
  as_of: string;
  current_fiscal_year: number;
  fiscal_year_start_month: number;
  currencies: CurrencyGiving[];
  soft_credits: { currency: string; count: number; total_minor: number }[];
  pledges: { currency: string; open: number; pledged_minor: number; paid_minor: number; outstanding_minor: number }[];
  recurring: { currency: string; active: number; monthly_minor: number }[];
}

export interface TopDonorView {
  donor_id: string;
  display_name?: string | null;
  currency: string;
  lifetime_total_minor: number;
  lifetime_count: number;
  last_gift_date?: string | null;
}

export interface RollupFundView {
  fund_id: string;
  code?: string | null;
  name?: string | null;
  restricted?: boolean | null;
  archived?: boolean | null;
  currencies: { currency: string; total_minor: number; gift_count: number; donors: number }[];
}

// ---- storage ----

export interface ObjectView {
  id: string;
  filename: string;
  content_type: string;
  size_bytes: number;
  status: string;
  purpose: string;
}

export interface UploadView {
  object: ObjectView;
  upload_url: string;
  upload_method: string;
  upload_headers: Record<string, string>;
  expires_at: string;
}

export interface LinkView {
  url: string;
  expires_at: string;
}

export interface IncomeMonth {
  month: string;
  total_minor: number;
  count: number;
}

export interface FundIncome {
  fund_id?: string | null;
  code?: string | null;
  name?: string | null;
  total_minor: number;
  count: number;
  by_month: IncomeMonth[];
}

export interface IncomeByFund {
  fiscal_year: number;
  fiscal_year_start_month: number;
  starts_on: string;
  ends_on: string;
  currencies: { currency: string; total_minor: number; funds: FundIncome[] }[];
}

export interface SourceIncome {
  source: string;
  total_minor: number;
  count: number;
  by_month: IncomeMonth[];
}

export interface IncomeBySource {
  fiscal_year: number;
  fiscal_year_start_month: number;
  starts_on: string;
  ends_on: string;
  currencies: { currency: string; total_minor: number; count: number; sources: SourceIncome[] }[];
}

export interface TopDonorEntry {
  donor_id: string;
  display_name?: string | null;
  total_minor: number;
  gift_count: number;
  last_gift_date?: string | null;
}

export interface TopDonors {
  period: string;
  fiscal_year?: number | null;
  fiscal_year_start_month: number;
  currencies: { currency: string; donors: TopDonorEntry[] }[];
}

// ---- messaging ----

/** An attribute's value: a string (at most 500 characters), a number or a boolean. */
export type AttributeValue = string | number | boolean;

export interface ContactView {
  id: string;
  revision: number;
  /** E.164. */
  phone: string;
  first_name?: string | null;
  last_name?: string | null;
  email?: string | null;
  tags: string[];
  attributes: Record<string, AttributeValue>;
  consent_source?: string | null;
  consented_at?: string | null;
  /** The number is on the do-not-contact list: it is never texted. */
  do_not_contact: boolean;
  donor_id?: string | null;
  /** How the donor link was made: by `phone`, or failing that by `email`. */
  donor_link?: 'phone' | 'email' | null;
  /** `consented_at` is set; kept in step with the linked donor's SMS preference. */
  sms_consent?: boolean;
  consent_withdrawn_at?: string | null;
  created_at: string;
  updated_at: string;
}

export interface ContactInput {
  /** A mobile number, E.164 or in the tenant's local form. */
  phone: string;
  first_name?: string | null;
  last_name?: string | null;
  email?: string | null;
  tags?: string[] | null;
  attributes?: Record<string, AttributeValue> | null;
  consent_source?: string | null;
  /** RFC 3339 or an ISO date. */
  consented_at?: string | null;
}

/** A JSON merge patch of a contact: `attributes` merge key by key, `null` removes one. */
export type ContactPatch = Partial<Omit<ContactInput, 'attributes'>> & { attributes?: Record<string, AttributeValue | null> | null };

export type DoNotContactReason = 'stop_keyword' | 'provider_opt_out' | 'staff';

export interface DoNotContactView {
  /** E.164. */
  phone: string;
  reason: DoNotContactReason;
  note?: string | null;
  /** `staff:<id>`, `api_key:<id>`, or `sms` for a reply. */
  added_by: string;
  added_at: string;
}

export interface DoNotContactInput {
  phone: string;
  note?: string | null;
}

export const CONTACT_IMPORT_OUTCOMES = ['create', 'update', 'unchanged', 'duplicate_in_file', 'invalid', 'invalid_number', 'do_not_contact'] as const;
export type ContactImportOutcome = (typeof CONTACT_IMPORT_OUTCOMES)[number];

/** What a column of a contact import may be read as (besides `attribute:<key>`). */
export const CONTACT_IMPORT_FIELDS = ['phone', 'first_name', 'last_name', 'email', 'tags', 'consent_source', 'consented_at', 'ignore'] as const;

export interface ContactImportRequest {
  csv: string;
  consent_source: string;
  consented_at?: string | null;
  /** `GB` or `AU`; the tenant's setting when absent. */
  default_country?: 'GB' | 'AU' | null;
  mapping?: Record<string, string> | null;
  tags?: string[] | null;
  update_existing?: boolean | null;
}

export interface ContactImportView {
  id: string;
  /** `dry_run`, `committing` or `committed`. */
  status: string;
  rows_total: number;
  rows_done: number;
  /** Rows by outcome: the dry run's until the commit ends, then the commit's. */
  summary: Partial<Record<ContactImportOutcome, number>> & Record<string, number>;
  /** `default_country`, `mapping`, `tags`, `consent_source`, `consented_at`, `update_existing`, `ignored_columns`. */
  options: Record<string, unknown>;
  created_by: string;
  rows_href: string;
  created_at: string;
  updated_at: string;
}

export interface ContactImportRowView {
  line: number;
  outcome: ContactImportOutcome;
  phone?: string | null;
  detail?: string | null;
  contact_id?: string | null;
}

export interface MessagingSettingsView {
  default_country: 'GB' | 'AU';
  revision: number;
  updated_at?: string | null;
  /** The kill switch: while true, nothing is sent or queued. */
  paused?: boolean;
  paused_at?: string | null;
  /** Who turned the kill switch on (`staff:<id>`...). */
  paused_by?: string | null;
  quiet_start?: string;
  quiet_end?: string;
  time_zone?: string;
  budget_currency?: string;
  price_per_segment_micros?: number;
}

export interface TemplateView {
  id: string;
  revision: number;
  name: string;
  body: string;
  /** The variables the body uses, in name order. */
  variables: string[];
  created_at: string;
  updated_at: string;
}

export interface TemplateInput {
  name: string;
  body: string;
}

export interface PreviewRequest {
  body?: string | null;
  template_id?: string | null;
  contact_id?: string | null;
  variables?: Record<string, string> | null;
}

export interface PreviewView {
  /** The whole message: the rendered text, then the tenant's opt-out line. */
  text: string;
  encoding: 'GSM-7' | 'UCS-2';
  characters: number;
  units: number;
  segments: number;
  units_per_segment: number;
  non_gsm_characters: string[];
  over_limit: boolean;
  cost_micros: number;
  currency: string;
  unfilled_variables: string[];
}

export type CampaignStatus = 'draft' | 'scheduled' | 'running' | 'paused' | 'completed' | 'cancelled';

export interface QueueSummary {
  jobs?: number;
  do_not_contact?: number;
  variables_missing?: number;
  too_long?: number;
  segments?: number;
  estimated_cost_micros?: number;
  first_send_at?: string | null;
  [key: string]: unknown;
}

export interface CampaignView {
  id: string;
  revision: number;
  name: string;
  template_id: string;
  tags: string[];
  /** The segment the campaign goes to, when its audience is one. */
  segment_id?: string | null;
  sender: string;
  status: CampaignStatus;
  queue_summary: QueueSummary;
  body?: string | null;
  send_at?: string | null;
  queued_at?: string | null;
  completed_at?: string | null;
  /** Jobs by status; with `GET /v1/campaigns/{id}` only. */
  jobs?: Record<string, number> | null;
  created_at: string;
  updated_at: string;
}

export interface CampaignInput {
  name: string;
  template_id: string;
  sender: string;
  tags?: string[] | null;
  segment_id?: string | null;
  send_at?: string | null;
}

/** A campaign's outcome (`GET /v1/campaigns/{id}/report`). */
export interface CampaignReport {
  campaign_id: string;
  status: CampaignStatus;
  queued: number;
  sent: number;
  delivered: number;
  undelivered: number;
  failed: number;
  blocked: number;
  cancelled: number;
  pending: number;
  segments: number;
  spend_micros: number;
  currency: string;
  opt_outs: number;
  human_clicks: number;
  bot_clicks: number;
  contacts_who_clicked: number;
}

export type AttributeOp = 'eq' | 'ne' | 'gt' | 'gte' | 'lt' | 'lte' | 'exists' | 'missing';

export interface AttributeCondition {
  key: string;
  op: AttributeOp;
  value?: string | number | boolean | null;
}

/** Who is in a segment: contacts meeting every condition given. */
export interface SegmentFilter {
  tags_any?: string[];
  tags_all?: string[];
  tags_none?: string[];
  attributes?: AttributeCondition[];
  sms_consent?: boolean | null;
  donor?: {
    linked?: boolean | null;
    gave_within_months?: number | null;
    lapsed_months?: number | null;
    lifetime_minor_at_least?: number | null;
  } | null;
}

export interface SegmentCounts {
  contacts: number;
  /** Not on the do-not-contact list: who a campaign would text. */
  reachable: number;
  reachable_with_consent: number;
  counted_at: string;
}

export interface SegmentView {
  id: string;
  revision: number;
  name: string;
  description?: string | null;
  filter: SegmentFilter;
  /** Counted live; absent from lists. */
  counts?: SegmentCounts | null;
  created_by: string;
  created_at: string;
  updated_at: string;
}

export interface SegmentInput {
  name: string;
  description?: string | null;
  filter: SegmentFilter;
}

export interface WindowSpend {
  starts_at: string;
  spent_micros: number;
  segments: number;
  budget_micros: number;
  segment_limit?: number | null;
  remaining_micros: number;
}

/** The tenant's spend against its budgets (`GET /v1/spend`). */
export interface SpendView {
  currency: string;
  time_zone: string;
  day: WindowSpend;
  month: WindowSpend;
  queued_micros: number;
  queued_segments: number;
  counted_at: string;
}

// ---- messaging: chat widget conversations ----

export type ConversationStatus = 'open' | 'pending' | 'resolved';

/** The member a conversation is with, as staff see them. */
export interface ConversationMember {
  id: string;
  identifier: string;
  verified: boolean;
  name?: string | null;
  email?: string | null;
  /** The fundraising donor with the member's email, when exactly one has it. */
  donor_id?: string | null;
  created_at: string;
}

export interface ConversationView {
  id: string;
  status: ConversationStatus;
  /** Grows with every change: the newer revision of a conversation wins. */
  revision: number;
  member: ConversationMember;
  /** `staff:<id>`, or null. */
  assignee?: string | null;
  last_seq: number;
  member_read_seq: number;
  staff_read_seq: number;
  /** The member's messages staff have not read. */
  unread: number;
  last_author?: 'member' | 'staff' | null;
  last_message_at?: string | null;
  last_preview?: string | null;
  created_at: string;
  updated_at: string;
}

export interface AttachmentView {
  object_id: string;
  file_name: string;
  content_type: string;
  size_bytes: number;
}

export interface MessageView {
  id: string;
  conversation_id: string;
  seq: number;
  author: 'member' | 'staff';
  /** `staff:<id>`, `api_key:<id>`, `member:<identifier>`. */
  author_subject?: string | null;
  body: string;
  attachments: AttachmentView[];
  client_message_id?: string | null;
  created_at: string;
}

export interface MessagesPage {
  data: MessageView[];
  more: boolean;
}

export interface PostedMessage {
  conversation: ConversationView;
  message: MessageView;
}

export interface ConversationSummary {
  open: number;
  pending: number;
  resolved: number;
  unassigned_open: number;
  mine_open: number;
  unread_conversations: number;
  unread_messages: number;
}

export interface ConversationPatch {
  status?: ConversationStatus;
  assignee?: string | null;
}
