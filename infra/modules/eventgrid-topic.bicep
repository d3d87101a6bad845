// The Event Grid system topic of the export account: created here, or an existing one reused (a
// storage account can have only one). Deployed at the topic's resource group, which Event Grid
// requires to be in the export account's subscription.

targetScope = 'resourceGroup'

@description('true: the topic exists already (it must have its system-assigned identity enabled); false: create it.')
param reuseExisting bool

param topicName string

@description('Region of the export account (a storage system topic lives in its source\'s region).')
param location string

@description('Resource id of the export storage account.')
param sourceAccountId string

param tags object = {}

resource createdTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (!reuseExisting) {
  name: topicName
  location: location
  tags: tags
  // Event Grid delivers to the queue and dead-letters with this identity, because the relay
  // account accepts no shared keys.
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: sourceAccountId
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource existingTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = if (reuseExisting) {
  name: topicName
}

// A reused topic without a system-assigned identity has no `identity.principalId`; reading it
// directly fails the deployment with "The language expression property 'identity' doesn't
// exist". Its full resource (reference(..., 'Full'), read only when the topic is reused: ARM
// evaluates the chosen branch of a conditional only) is looked into first, and a missing
// identity stops the deployment with what to do.
var existingFull = reference(existingTopic.id, '2022-06-15', 'Full')
var noIdentity = 'The existing Event Grid system topic ${topicName} (parameter existingSystemTopicId) has no system-assigned identity, which delivers the events to the relay queue. Enable it: az eventgrid system-topic update --subscription <sub> -g <topic resource group> -n ${topicName} --identity systemassigned; then deploy again.'

output name string = topicName
output principalId string = reuseExisting ? (contains(existingFull, 'identity') ? (contains(existingFull.identity, 'principalId') ? existingFull.identity.principalId : fail(noIdentity)) : fail(noIdentity)) : createdTopic.identity.principalId
