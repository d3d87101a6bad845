// mde-relay on Azure Functions Flex Consumption, deployed into one resource group.
//
// What this creates (docs/deploy.md walks through it):
// - a storage account for the Functions host, the relay's checkpoints and dead letters and the
//   BlobCreated queue, with shared-key access disabled (every client uses Entra ID);
// - a user-assigned managed identity, used by the app for every connection;
// - Log Analytics + Application Insights (Entra-only ingestion);
// - a Flex Consumption plan (FC1) and a Linux function app running the custom handler;
// - data-plane role assignments, each the smallest built-in role that does the job;
// - an Event Grid system topic on the Defender export account (or an existing one, reused) with a
//   subscription that drops Microsoft.Storage.BlobCreated events of the export containers into
//   the queue.
//
// Secrets (webhook URL, headers, HMAC key) are @secure() parameters that become app settings:
// they are not written to the deployment history and never appear in an output. A secure
// parameter may also be given as a Key Vault reference, `@Microsoft.KeyVault(SecretUri=...)`,
// which the app resolves with its managed identity (keyVaultReferenceIdentity below).

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------
// Parameters: where and what
// ---------------------------------------------------------------------------------------------

@description('Region of the relay resources. Defaults to the resource group region.')
param location string = resourceGroup().location

@description('Short prefix of resource names (letters and digits; lower-cased where names are built from it, since the storage account name is).')
@minLength(3)
@maxLength(11)
param namePrefix string = 'mderelay'

@description('Name of the function app (globally unique host name).')
param functionAppName string = '${toLower(namePrefix)}-${uniqueString(resourceGroup().id)}'

@description('Tags put on every resource created here.')
param tags object = {}

@description('Resource id of the storage account the Defender streaming export writes to: /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Storage/storageAccounts/<name>. It may live in another resource group or subscription (same tenant).')
param exportStorageAccountId string

@description('Resource id of an Event Grid system topic that already exists on the export account (an account can have only one). Empty: create one. A reused topic must have its system-assigned identity enabled.')
param existingSystemTopicId string = ''

@description('Name of the system topic to create when existingSystemTopicId is empty.')
param systemTopicName string = '${last(split(exportStorageAccountId, '/'))}-mde-relay'

@description('Queue Event Grid delivers BlobCreated events into (RELAY_EVENTS_QUEUE; BlobCreated/function.json reads it as %RELAY_EVENTS_QUEUE%).')
param eventsQueueName string = 'mde-blob-created'

@description('Flex Consumption: most instances the app may scale out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption: memory of one instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Create alert rules on lag and dead letters (docs/operations.md).')
param alertsEnabled bool = true

@description('Resource id of an action group the alerts notify (empty: no notification).')
param alertActionGroupId string = ''

@description('Lag alert threshold: seconds since the newest delivered event of a table.')
@minValue(60)
param lagAlertThresholdSeconds int = 1800

@description('Dead-letter alert threshold: rows dead-lettered per table in the alert window.')
@minValue(0)
param deadLetterAlertThreshold int = 0

// ---------------------------------------------------------------------------------------------
// Parameters: relay settings (RELAY_*; defaults equal the binary's own, see src/config/mod.rs)
// ---------------------------------------------------------------------------------------------

@description('RELAY_CONTAINER_PREFIX: only containers starting with this are read (also the Event Grid subject filter).')
param containerPrefix string = 'insights-logs-advancedhunting-'

@description('RELAY_TAIL_SCHEDULE: NCRONTAB schedule of the Tail sweep that finds appended rows.')
param tailSchedule string = '0 */1 * * * *'

@description('RELAY_STATE_CONTAINER: container of checkpoints in the relay storage account.')
param stateContainerName string = 'mde-relay-state'

@description('RELAY_DEADLETTER_CONTAINER: container of dead-lettered rows in the relay storage account.')
param deadLetterContainerName string = 'mde-relay-deadletter'

@description('RELAY_FORMAT: event format.')
@allowed([
  'normalized'
  'raw'
  'ocsf'
])
param format string = 'normalized'

@description('RELAY_TABLES: allow-list of tables, comma-separated; empty = all.')
param tables string = ''

@description('RELAY_TENANTS: allow-list of tenant ids, comma-separated; empty = all.')
param tenants string = ''

@description('RELAY_TRANSFORMS: KQL transforms per table, run before the sink (docs/transforms.md); the transform text, or a path in the package; empty = none.')
param transforms string = ''

@description('RELAY_MAX_ROW_BYTES: longest accepted row; longer rows are dead-lettered.')
param maxRowBytes string = '16MiB'

@description('RELAY_RETRY_MAX_ELAPSED: network sinks give up retrying a request after this long.')
param retryMaxElapsed string = '5m'

@description('RELAY_READ_CHUNK: bytes per ranged read of an export blob (memory per drain is about twice this).')
param readChunk string = '4MiB'

@description('RELAY_CLOSE_GRACE: a blob is closed once its hour ended and it was last written this long ago.')
param closeGrace string = '30m'

@description('RELAY_LEASE_SECONDS: lease on a blob\'s checkpoint while it is drained (15-60).')
param leaseSeconds string = '30'

@description('RELAY_DRAIN_CONCURRENCY: blobs drained at once by one instance.')
param drainConcurrency string = '4'

@description('RELAY_MAX_DRAIN_TIME: an invocation stops draining (at a checkpoint) after this long; keep it below host.json functionTimeout (10 min).')
param maxDrainTime string = '8m'

@description('RELAY_TAIL_MODE: dispatch puts one drain request per blob behind its checkpoint on the events queue, so BlobCreated invocations on every instance drain them; drain drains them inside the Tail invocation (one instance).')
@allowed([
  'dispatch'
  'drain'
])
param tailMode string = 'dispatch'

@description('RELAY_INFLIGHT_BATCHES: batches of one blob at the sink at once while the next ones are read.')
param inflightBatches string = '8'

@description('RELAY_CHECKPOINT_INTERVAL: a drain writes its checkpoint at most this often (and at its end); on a crash at most this much is delivered again, with the same ids.')
param checkpointInterval string = '5s'

@description('RELAY_CHECKPOINT_BYTES: a drain writes its checkpoint once this much input was acknowledged since the last write.')
param checkpointBytes string = '16MiB'

@description('RELAY_TAIL_SWEEP_INTERVAL: how often Tail also re-checks the last tailSweepHours hours.')
param tailSweepInterval string = '1h'

@description('RELAY_TAIL_SWEEP_HOURS: how many hours back that slow sweep looks.')
param tailSweepHours string = '48'

@description('RELAY_MAX_REQUEST_BYTES: largest invocation body the handler accepts.')
param maxRequestBytes string = '4MiB'

@description('RUST_LOG: filter of the relay\'s JSON logs (tracing EnvFilter syntax, e.g. info or mde_relay=debug).')
param logFilter string = 'info'

// ---------------------------------------------------------------------------------------------
// Parameters: the sink
// ---------------------------------------------------------------------------------------------

@description('RELAY_SINK: where events go. stdout lands in Application Insights (testing only: it is billed per GB); file writes to the instance disk, which Flex Consumption does not keep.')
@allowed([
  'stdout'
  'file'
  'webhook'
  'queue'
  'logs-ingestion'
  'elasticsearch'
])
param sink string

@description('RELAY_BATCH_MAX_EVENTS: events per batch.')
param batchMaxEvents string = '500'

@description('RELAY_BATCH_MAX_BYTES: bytes per request as sent (after serialization and compression).')
param batchMaxBytes string = '1000000'

@description('RELAY_FILE_PATH: file sink only; a file under /tmp/ (the package mount is read-only on Flex Consumption; /tmp is per instance and not kept).')
param filePath string = ''

@description('RELAY_WEBHOOK_URL: webhook sink URL (https). Secret: it often carries a token.')
@secure()
param webhookUrl string = ''

@description('RELAY_WEBHOOK_FORMAT: webhook body format.')
@allowed([
  'ndjson'
  'json'
  'splunk-hec'
])
param webhookFormat string = 'ndjson'

@description('RELAY_WEBHOOK_HEADERS: extra headers, `Name: value` separated by newlines or `;` (e.g. `Authorization: Splunk <token>`).')
@secure()
param webhookHeaders string = ''

@description('RELAY_WEBHOOK_GZIP: gzip request bodies.')
@allowed([
  'true'
  'false'
])
param webhookGzip string = 'false'

@description('RELAY_WEBHOOK_SECRET: HMAC-SHA256 key for the X-Relay-Signature header.')
@secure()
param webhookSecret string = ''

@description('RELAY_WEBHOOK_TIMEOUT: per-request timeout.')
param webhookTimeout string = '30s'

@description('RELAY_WEBHOOK_CONCURRENCY: requests in flight, across all drains of an instance (8: the RELAY_INFLIGHT_BATCHES of one blob at once).')
param webhookConcurrency string = '8'

@description('RELAY_QUEUE_NAME: queue sink only; a queue in the relay storage account (created here when set).')
param queueSinkName string = ''

@description('RELAY_QUEUE_ENCODING: queue sink message encoding.')
@allowed([
  'base64'
  'none'
])
param queueSinkEncoding string = 'base64'

@description('RELAY_QUEUE_CLAIMS_CONTAINER: queue sink; container (relay account) of events too large for one message.')
param queueClaimsContainerName string = 'mde-relay-claims'

@description('RELAY_QUEUE_CONCURRENCY: queue sink; messages in flight.')
param queueSinkConcurrency string = '8'

@description('logs-ingestion sink: create the custom table MdeRelayEvents_CL, a data collection endpoint and a rule (stream Custom-MdeRelayEvents) in logsWorkspaceId. false: use the existing rule logsRuleId with logsEndpoint and logsRuleImmutableId.')
param createLogsRule bool = true

@description('logs-ingestion sink with createLogsRule: resource id of the Log Analytics workspace (the Sentinel workspace): /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.OperationalInsights/workspaces/<name>.')
param logsWorkspaceId string = ''

@description('logs-ingestion sink without createLogsRule: resource id of the existing data collection rule (the relay identity gets Monitoring Metrics Publisher on it).')
param logsRuleId string = ''

@description('RELAY_LOGS_ENDPOINT, logs-ingestion sink without createLogsRule: the data collection endpoint or the rule\'s logs ingestion endpoint.')
param logsEndpoint string = ''

@description('RELAY_LOGS_RULE_ID, logs-ingestion sink without createLogsRule: the rule\'s immutable id (dcr-…).')
param logsRuleImmutableId string = ''

@description('RELAY_LOGS_STREAM: stream name; {table} is replaced by the event\'s table.')
param logsStream string = 'Custom-MdeRelayEvents'

@description('RELAY_LOGS_GZIP: gzip request bodies.')
@allowed([
  'true'
  'false'
])
param logsGzip string = 'true'

@description('RELAY_ES_URL: elasticsearch sink cluster URL (https).')
param esUrl string = ''

@description('RELAY_ES_INDEX: index or data stream; {table} is replaced by the table, lower-cased.')
param esIndex string = 'mde-relay-{table}'

@description('RELAY_ES_API_KEY: elasticsearch sink API key (the `encoded` value).')
@secure()
param esApiKey string = ''

@description('RELAY_ES_USERNAME: elasticsearch sink user for basic auth (instead of an API key).')
param esUsername string = ''

@description('RELAY_ES_PASSWORD: elasticsearch sink password for basic auth.')
@secure()
param esPassword string = ''

@description('RELAY_ES_PIPELINE: ingest pipeline documents go through.')
param esPipeline string = ''

@description('RELAY_ES_GZIP: gzip request bodies.')
@allowed([
  'true'
  'false'
])
param esGzip string = 'false'

@description('RELAY_ES_JSON_OBJECTS: send JSON column values that are not objects as {"value": …}, so the flattened/flat_object fields of the index templates index them.')
@allowed([
  'true'
  'false'
])
param esJsonObjects string = 'true'

@description('RELAY_ES_INSTALL_TEMPLATES: install the index templates at start-up, as `mde-relay setup elasticsearch` does (the key needs manage_index_templates).')
@allowed([
  'true'
  'false'
])
param esInstallTemplates string = 'false'

// ---------------------------------------------------------------------------------------------
// Names and ids
// ---------------------------------------------------------------------------------------------

var token = uniqueString(resourceGroup().id)
// Storage account names must be lower case; every name uses the same lower-cased prefix.
var prefix = toLower(namePrefix)
var storageAccountName = take('${prefix}${token}', 24)
var deploymentContainerName = 'app-package'
var eventGridDeadLetterContainerName = 'eventgrid-deadletter'

// The export account: /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Storage/storageAccounts/<name>
var exportIdParts = split(exportStorageAccountId, '/')
var exportSubscriptionId = exportIdParts[2]
var exportResourceGroupName = exportIdParts[4]
var exportAccountName = exportIdParts[8]

// The system topic lives in the export account's subscription (Event Grid requires it); a new one
// goes into the export account's resource group, a reused one stays where it is.
var reuseTopic = !empty(existingSystemTopicId)
var topicIdParts = split(existingSystemTopicId, '/')
var topicSubscriptionId = reuseTopic ? topicIdParts[2] : exportSubscriptionId
var topicResourceGroupName = reuseTopic ? topicIdParts[4] : exportResourceGroupName
var topicName = reuseTopic ? topicIdParts[8] : systemTopicName
var topicId = resourceId(topicSubscriptionId, topicResourceGroupName, 'Microsoft.EventGrid/systemTopics', topicName)

// Sink settings that cannot work fail the deployment here, with a message naming the parameter,
// rather than every invocation at run time. RELAY_SINK is set from this value.
var validatedSink = ((sink == 'webhook') && empty(webhookUrl)) ? fail('sink=webhook needs the parameter webhookUrl (RELAY_WEBHOOK_URL): the https URL events are posted to.') : (((sink == 'queue') && empty(queueSinkName)) ? fail('sink=queue needs the parameter queueSinkName (RELAY_QUEUE_NAME): the queue of the relay storage account that receives the events.') : (((sink == 'elasticsearch') && empty(esUrl)) ? fail('sink=elasticsearch needs the parameter esUrl (RELAY_ES_URL): the https URL of the cluster.') : (((sink == 'logs-ingestion') && createLogsRule && empty(logsWorkspaceId)) ? fail('sink=logs-ingestion with createLogsRule needs the parameter logsWorkspaceId: the resource id of the Log Analytics workspace.') : (((sink == 'logs-ingestion') && (!createLogsRule) && (empty(logsRuleId) || empty(logsEndpoint) || empty(logsRuleImmutableId))) ? fail('sink=logs-ingestion without createLogsRule needs the parameters logsRuleId, logsEndpoint and logsRuleImmutableId of the existing data collection rule.') : (((sink == 'file') && (!startsWith(filePath, '/tmp/'))) ? fail('sink=file needs the parameter filePath (RELAY_FILE_PATH) set to a file under /tmp/, e.g. /tmp/mde-relay-events.ndjson: the app package mount of Flex Consumption is read-only, and /tmp is the instance disk (not kept when the instance goes).') : sink)))))

// ---------------------------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------------------------

// User-assigned, so its roles exist before the app starts (a system-assigned identity would only
// get them after the app is created, and the host would fail its first storage calls).
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${prefix}-id-${token}'
  location: location
  tags: tags
}

// ---------------------------------------------------------------------------------------------
// The relay's own storage account
// ---------------------------------------------------------------------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    // Entra ID only: account keys cannot be used, so no connection string exists to leak.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// Flex Consumption reads the deployment zip from here.
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
}

resource stateContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: stateContainerName
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
}

// Events Event Grid gave up delivering (after the retry policy) land here.
resource eventGridDeadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: eventGridDeadLetterContainerName
}

// The queue sink's claim checks (events larger than one message).
resource claimsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = if (sink == 'queue') {
  parent: blobService
  name: queueClaimsContainerName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource eventsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: eventsQueueName
}

resource sinkQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = if ((sink == 'queue') && !empty(queueSinkName)) {
  parent: queueService
  name: queueSinkName
}

// ---------------------------------------------------------------------------------------------
// Roles of the app identity on its own account
// ---------------------------------------------------------------------------------------------

// Blob Data Owner, Queue Data Contributor and Table Data Contributor (modules/relay-roles.bicep
// says why each). In a module so that each assignment's name can include the principal id,
// which is known only once the identity exists: a re-created identity then gets new
// assignments instead of failing the redeploy with RoleAssignmentUpdateNotPermitted.
module relayRoles 'modules/relay-roles.bicep' = {
  name: 'mde-relay-roles-${token}'
  params: {
    storageAccountName: storage.name
    principalId: identity.properties.principalId
  }
}

// ---------------------------------------------------------------------------------------------
// Read access to the export account (possibly another resource group / subscription)
// ---------------------------------------------------------------------------------------------

resource exportAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: exportAccountName
  scope: resourceGroup(exportSubscriptionId, exportResourceGroupName)
}

module exportReader 'modules/export-reader.bicep' = {
  name: 'mde-relay-export-reader-${token}'
  scope: resourceGroup(exportSubscriptionId, exportResourceGroupName)
  params: {
    exportAccountName: exportAccountName
    principalId: identity.properties.principalId
  }
}

// ---------------------------------------------------------------------------------------------
// Monitoring
// ---------------------------------------------------------------------------------------------

module monitoring 'modules/monitoring.bicep' = {
  name: 'mde-relay-monitoring-${token}'
  params: {
    location: location
    tags: tags
    workspaceName: '${prefix}-log-${token}'
    appInsightsName: '${prefix}-appi-${token}'
    retentionInDays: logRetentionDays
    principalId: identity.properties.principalId
    alertsEnabled: alertsEnabled
    actionGroupId: alertActionGroupId
    lagAlertThresholdSeconds: lagAlertThresholdSeconds
    deadLetterAlertThreshold: deadLetterAlertThreshold
  }
}

// ---------------------------------------------------------------------------------------------
// Logs Ingestion (logs-ingestion sink): table, endpoint, rule and role in the workspace's
// resource group, or the role on an existing rule
// ---------------------------------------------------------------------------------------------

var createLogs = (sink == 'logs-ingestion') && createLogsRule
// Resource Manager evaluates a skipped module's scope too: an empty id would index out of range,
// so it stands in for an id in this resource group.
var placeholderId = '${resourceGroup().id}/providers/none/none/none'
var logsWorkspaceParts = split(empty(logsWorkspaceId) ? placeholderId : logsWorkspaceId, '/')
var logsRuleParts = split(empty(logsRuleId) ? placeholderId : logsRuleId, '/')

module logsIngestion 'modules/logs-ingestion.bicep' = if (createLogs) {
  name: 'mde-relay-logs-ingestion-${token}'
  scope: resourceGroup(logsWorkspaceParts[2], logsWorkspaceParts[4])
  params: {
    workspaceName: logsWorkspaceParts[8]
    namePrefix: '${prefix}-${token}'
    principalId: identity.properties.principalId
    tags: tags
  }
}

module logsAccess 'modules/logs-ingestion-access.bicep' = if ((sink == 'logs-ingestion') && !createLogsRule && !empty(logsRuleId)) {
  name: 'mde-relay-logs-access-${token}'
  scope: resourceGroup(logsRuleParts[2], logsRuleParts[4])
  params: {
    ruleName: logsRuleParts[8]
    principalId: identity.properties.principalId
  }
}

// ---------------------------------------------------------------------------------------------
// The function app
// ---------------------------------------------------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${prefix}-plan-${token}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    // Linux.
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identity.id
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      // Custom handler on Flex: the runtime is set here and FUNCTIONS_WORKER_RUNTIME must not be.
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      appSettings: [
        // Host storage, identity-based: the host derives the blob/queue/table endpoints from
        // the account name.
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storage.name
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identity.properties.clientId
        }
        // The Defender export account, read-only. No trailing slash: the storage SDK rejects
        // a `//container` path.
        {
          name: 'MdeExportStorage__blobServiceUri'
          value: 'https://${exportAccountName}.blob.${environment().suffixes.storage}'
        }
        {
          name: 'MdeExportStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'MdeExportStorage__clientId'
          value: identity.properties.clientId
        }
        // The relay's own clients use the app's managed identity too (an operator's copy of
        // these settings sets RELAY_CREDENTIAL=azurecli instead: docs/operations.md).
        {
          name: 'RELAY_CREDENTIAL'
          value: 'managedidentity'
        }
        // Telemetry with Entra ID (the component has local auth disabled).
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: monitoring.outputs.connectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identity.properties.clientId};Authorization=AAD'
        }
        // Source and drain.
        {
          name: 'RELAY_CONTAINER_PREFIX'
          value: containerPrefix
        }
        {
          name: 'RELAY_EVENTS_QUEUE'
          value: eventsQueueName
        }
        {
          name: 'RELAY_TAIL_SCHEDULE'
          value: tailSchedule
        }
        {
          name: 'RELAY_STATE_CONTAINER'
          value: stateContainerName
        }
        {
          name: 'RELAY_DEADLETTER_CONTAINER'
          value: deadLetterContainerName
        }
        {
          name: 'RELAY_FORMAT'
          value: format
        }
        {
          name: 'RELAY_TABLES'
          value: tables
        }
        {
          name: 'RELAY_TENANTS'
          value: tenants
        }
        {
          name: 'RELAY_TRANSFORMS'
          value: transforms
        }
        {
          name: 'RELAY_MAX_ROW_BYTES'
          value: maxRowBytes
        }
        {
          name: 'RELAY_READ_CHUNK'
          value: readChunk
        }
        {
          name: 'RELAY_CLOSE_GRACE'
          value: closeGrace
        }
        {
          name: 'RELAY_LEASE_SECONDS'
          value: leaseSeconds
        }
        {
          name: 'RELAY_DRAIN_CONCURRENCY'
          value: drainConcurrency
        }
        {
          name: 'RELAY_MAX_DRAIN_TIME'
          value: maxDrainTime
        }
        {
          name: 'RELAY_TAIL_MODE'
          value: tailMode
        }
        {
          name: 'RELAY_INFLIGHT_BATCHES'
          value: inflightBatches
        }
        {
          name: 'RELAY_CHECKPOINT_INTERVAL'
          value: checkpointInterval
        }
        {
          name: 'RELAY_CHECKPOINT_BYTES'
          value: checkpointBytes
        }
        {
          name: 'RELAY_TAIL_SWEEP_INTERVAL'
          value: tailSweepInterval
        }
        {
          name: 'RELAY_TAIL_SWEEP_HOURS'
          value: tailSweepHours
        }
        {
          name: 'RELAY_MAX_REQUEST_BYTES'
          value: maxRequestBytes
        }
        {
          name: 'RUST_LOG'
          value: logFilter
        }
        // Sink.
        {
          name: 'RELAY_SINK'
          value: validatedSink
        }
        {
          name: 'RELAY_BATCH_MAX_EVENTS'
          value: batchMaxEvents
        }
        {
          name: 'RELAY_BATCH_MAX_BYTES'
          value: batchMaxBytes
        }
        {
          name: 'RELAY_FILE_PATH'
          value: filePath
        }
        {
          name: 'RELAY_WEBHOOK_URL'
          value: webhookUrl
        }
        {
          name: 'RELAY_WEBHOOK_FORMAT'
          value: webhookFormat
        }
        {
          name: 'RELAY_WEBHOOK_HEADERS'
          value: webhookHeaders
        }
        {
          name: 'RELAY_WEBHOOK_GZIP'
          value: webhookGzip
        }
        {
          name: 'RELAY_WEBHOOK_SECRET'
          value: webhookSecret
        }
        {
          name: 'RELAY_WEBHOOK_TIMEOUT'
          value: webhookTimeout
        }
        {
          name: 'RELAY_WEBHOOK_CONCURRENCY'
          value: webhookConcurrency
        }
        {
          name: 'RELAY_QUEUE_NAME'
          value: queueSinkName
        }
        {
          name: 'RELAY_QUEUE_CONNECTION'
          value: 'AzureWebJobsStorage'
        }
        {
          name: 'RELAY_QUEUE_ENCODING'
          value: queueSinkEncoding
        }
        {
          name: 'RELAY_QUEUE_CLAIMS_CONTAINER'
          value: queueClaimsContainerName
        }
        {
          name: 'RELAY_QUEUE_CONCURRENCY'
          value: queueSinkConcurrency
        }
        {
          name: 'RELAY_RETRY_MAX_ELAPSED'
          value: retryMaxElapsed
        }
        // logs-ingestion sink: the created rule's endpoint and id, or the given ones; the
        // token is the app's user-assigned identity's.
        {
          name: 'RELAY_LOGS_ENDPOINT'
          value: createLogs ? logsIngestion.outputs.endpoint : logsEndpoint
        }
        {
          name: 'RELAY_LOGS_RULE_ID'
          value: createLogs ? logsIngestion.outputs.ruleImmutableId : logsRuleImmutableId
        }
        {
          name: 'RELAY_LOGS_STREAM'
          value: logsStream
        }
        {
          name: 'RELAY_LOGS_CLIENT_ID'
          value: identity.properties.clientId
        }
        {
          name: 'RELAY_LOGS_GZIP'
          value: logsGzip
        }
        // elasticsearch sink.
        {
          name: 'RELAY_ES_URL'
          value: esUrl
        }
        {
          name: 'RELAY_ES_INDEX'
          value: esIndex
        }
        {
          name: 'RELAY_ES_API_KEY'
          value: esApiKey
        }
        {
          name: 'RELAY_ES_USERNAME'
          value: esUsername
        }
        {
          name: 'RELAY_ES_PASSWORD'
          value: esPassword
        }
        {
          name: 'RELAY_ES_PIPELINE'
          value: esPipeline
        }
        {
          name: 'RELAY_ES_GZIP'
          value: esGzip
        }
        {
          name: 'RELAY_ES_JSON_OBJECTS'
          value: esJsonObjects
        }
        {
          name: 'RELAY_ES_INSTALL_TEMPLATES'
          value: esInstallTemplates
        }
      ]
    }
  }
  // The host must be able to reach its storage and the export account from its first start.
  dependsOn: [
    relayRoles
    exportReader
    deploymentContainer
    eventsQueue
  ]
}

// ---------------------------------------------------------------------------------------------
// Event Grid: BlobCreated of the export containers -> the events queue
// ---------------------------------------------------------------------------------------------

module systemTopic 'modules/eventgrid-topic.bicep' = {
  name: 'mde-relay-topic-${token}'
  scope: resourceGroup(topicSubscriptionId, topicResourceGroupName)
  params: {
    reuseExisting: reuseTopic
    topicName: topicName
    location: exportAccount.location
    sourceAccountId: exportStorageAccountId
    tags: tags
  }
}

// Storage Queue Data Message Sender on the events queue and Blob Data Contributor on the Event
// Grid dead-letter container, for the topic's identity (modules/topic-roles.bicep). A module, so
// the assignment names include the topic identity's principal id.
module topicRoles 'modules/topic-roles.bicep' = {
  name: 'mde-relay-topic-roles-${token}'
  params: {
    storageAccountName: storage.name
    queueName: eventsQueue.name
    deadLetterContainerName: eventGridDeadLetterContainer.name
    principalId: systemTopic.outputs.principalId
  }
}

module blobCreatedSubscription 'modules/eventgrid-subscription.bicep' = {
  name: 'mde-relay-subscription-${token}'
  scope: resourceGroup(topicSubscriptionId, topicResourceGroupName)
  params: {
    topicName: systemTopic.outputs.name
    subscriptionName: '${prefix}-blob-created-${token}'
    containerPrefix: containerPrefix
    queueAccountId: storage.id
    queueName: eventsQueue.name
    deadLetterContainerName: eventGridDeadLetterContainer.name
  }
  // Event Grid delivers with the topic's identity: its roles come first.
  dependsOn: [
    topicRoles
  ]
}

// ---------------------------------------------------------------------------------------------
// Outputs (nothing secret)
// ---------------------------------------------------------------------------------------------

output functionAppName string = functionApp.name
output eventsQueueName string = eventsQueue.name
output principalId string = identity.properties.principalId
output identityClientId string = identity.properties.clientId
output storageAccountName string = storage.name
output systemTopicName string = systemTopic.outputs.name
output systemTopicId string = topicId
output eventSubscriptionName string = blobCreatedSubscription.outputs.name
output appInsightsName string = monitoring.outputs.name
output logsRuleImmutableId string = createLogs ? logsIngestion.outputs.ruleImmutableId : logsRuleImmutableId
output logsTableName string = createLogs ? logsIngestion.outputs.tableName : ''
// For the teardown (docs/deploy.md): what this deployment created outside the relay group.
output systemTopicCreated bool = !reuseTopic
output logsRuleId string = createLogs ? logsIngestion.outputs.ruleId : ''
output logsEndpointId string = createLogs ? logsIngestion.outputs.endpointId : ''
output logsTableId string = createLogs ? logsIngestion.outputs.tableId : ''
output logsRoleAssignmentId string = createLogs ? logsIngestion.outputs.publisherAssignmentId : ''
